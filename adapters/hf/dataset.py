"""`LitShardDataset`: the packed sequences of a compiled folder as a deterministic, resumable `IterableDataset`.

Order. Epoch `e` reads the shards in `permutation(seed, e)` order (manifest order with `shuffle=False`) and passes
the sequences through a bounded shuffle buffer seeded by (seed, e). Epochs follow each other in one global stream,
endless with `epochs=None` (the Trainer stops at `max_steps`), so no rank ever meets an epoch boundary that
another rank has not met.

Split. Global sequence `g` goes to rank `g % world_size`, whose `g // world_size`-th sequence it becomes; the
rank's sequences are cut into batches of `batch_size`, and loader worker `w` of `W` produces the batches `k` with
`(k - start) % W == w`. torch's DataLoader hands out worker batches round-robin, so the batches come out in the
order `k = start, start+1, ...` whatever `W` is: the same bytes for any number of loader workers. The price is
that every worker reads every shard's bytes (decoding only its own samples; images are decoded by the collator).
With a finite `epochs`, the stream is completed with the first sequences of epoch 0 up to a multiple of
`world_size` (at most `world_size - 1` repeated), so that every rank runs the same number of steps.

Resume. The state is the number of this rank's batches consumed; `load_state_dict` makes the next iteration start
at the batch after them. It needs the same seed, shuffle, shards, batch size, rank and world size (checked).
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from adapters.hf.reader import Folder, Sample, decode, iter_members, open_folder
from adapters.megatron.data import buffer_shuffle
from adapters.megatron.reweigh import Reweigh

STATE_FORMAT = "litdata-hf-dataset-state"


class LitShardDataset(IterableDataset):
    """Packed sequences of litdata shards (see the module docstring for order, split and resume)."""

    def __init__(self, data, *, batch_size: int = 1, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, shuffle_buffer: int = 64, epochs: int | None = None,
                 reweigh: Reweigh | None = None, verify_checksums: bool = True) -> None:
        self.folder: Folder = open_folder(data)
        self.seed, self.shuffle, self.epochs, self.reweigh = seed, shuffle, epochs, reweigh
        self.shuffle_buffer = shuffle_buffer if shuffle else 0
        self.verify_checksums = verify_checksums
        self.batch_size, self.rank, self.world_size = 1, 0, 1
        self.start_batch = 0  # set by load_state_dict
        self._yielded = 0  # samples yielded in this process (without loader workers)
        self._configure(batch_size=batch_size, rank=rank, world_size=world_size)

    def _configure(self, *, batch_size: int, rank: int, world_size: int) -> None:
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size, got {batch_size}, {rank}, {world_size}")
        if self.epochs is not None and (self.epochs < 1 or (world_size > 1 and self.folder.total_sequences() is None)):
            raise ValueError("epochs must be >= 1 (or None: endless); splitting a finite stream over ranks needs "
                             "the manifest's sequence counts")
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def configured(self, *, batch_size: int, rank: int, world_size: int) -> LitShardDataset:
        """A copy for one rank of a run with `world_size` ranks and per-device batches of `batch_size`."""
        out = copy.copy(self)
        out._configure(batch_size=batch_size, rank=rank, world_size=world_size)
        out._yielded = 0
        return out

    # ---- iteration ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        start, size, ranks = self.start_batch, self.batch_size, self.world_size
        self._yielded = 0
        for g, (shard, key, members) in enumerate(self._global_stream()):
            if g % ranks != self.rank:
                continue
            batch = (g // ranks) // size
            if batch < start or (batch - start) % workers != worker:
                continue
            sample = decode(self.folder, shard, key, members)
            if self.reweigh is not None:
                sample = replace(sample, weights=self.reweigh.apply(sample.classes, sample.cu_seqlens))
            self._yielded += 1
            yield sample

    def _global_stream(self) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        if self.epochs is None:
            return itertools.chain.from_iterable(self._epoch(e) for e in itertools.count())
        total = self.folder.total_sequences()
        finite = itertools.chain.from_iterable(self._epoch(e) for e in range(self.epochs))
        if total is None:  # one rank (checked in _configure): nothing to even out
            return finite
        length = math.ceil(total * self.epochs / self.world_size) * self.world_size
        return itertools.islice(itertools.chain(finite, self._epoch(0)), length)

    def _epoch(self, epoch: int) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        shards = self.folder.shards
        n = len(shards)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else range(n)
        items = ((shards[i].name, key, members) for i in order
                 for key, members in iter_members(shards[i], verify_checksums=self.verify_checksums))
        if self.shuffle_buffer > 1:
            rng = random.Random(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
            items = buffer_shuffle(items, rng, self.shuffle_buffer)
        return items

    # ---- state --------------------------------------------------------------------------------------
    def state_dict(self, batches_consumed: int | None = None) -> dict:
        """Where the consumer is. Without loader workers the dataset counts what it yielded; with workers the
        loader (`adapters.hf.loader.LitDataLoader`) passes the batches it handed out."""
        if batches_consumed is None:
            batches_consumed = self.start_batch + self._yielded // self.batch_size
        return {"format": STATE_FORMAT, "version": 1, **self._identity(), "batches": int(batches_consumed)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != STATE_FORMAT or state.get("version") != 1:
            raise ValueError(f"not a {STATE_FORMAT} v1 state: {state.get('format')!r} {state.get('version')!r}")
        for key, value in self._identity().items():
            if state.get(key) != value:
                raise ValueError(f"cannot resume: the state has {key}={state.get(key)!r}, this dataset {value!r}")
        self.start_batch, self._yielded = int(state["batches"]), 0

    def _identity(self) -> dict:
        return {"seed": self.seed, "shuffle": self.shuffle, "shuffle_buffer": self.shuffle_buffer,
                "epochs": self.epochs, "batch_size": self.batch_size, "rank": self.rank,
                "world_size": self.world_size, "shards": [s.name for s in self.folder.shards]}

