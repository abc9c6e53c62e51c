"""The shard dataset: a deterministic, resumable `IterableDataset` of packed sequences (batched by loader.py).

Splitting. Each epoch `e` the shards are put in the order `permutation(seed, e)` (manifest order when
`shuffle=False`); data-parallel rank `r` takes `order[r::dp_size]` and loader worker `w` takes `[w::W]` of
that. When there are fewer shards than `dp_size * W` slots, the split moves to the sequence level: every
slot reads all shards of the epoch and keeps sequences `i` with `i % (dp_size*W) == r*W + w`, so no rank
is left without data (at the price of every slot reading every shard). A slot that still gets no sequence
in an epoch raises `ValueError` rather than stalling its rank. Counts per rank may differ by the sizes of
the shards; with `epochs=None` (loop forever) that does not matter for step-based training.

Shuffling. Within each slot, a bounded buffer (`shuffle_buffer` sequences) shuffles the slot's stream of
the epoch with a generator seeded by (seed, epoch, rank, worker); the buffer drains at the end of every
epoch, so an epoch is a self-contained, reproducible stream. Images are decoded after the buffer.

Resume. The state of a slot is (epoch, sequences taken from its epoch stream). Resuming replays that
epoch's stream from the seed and skips the consumed count: skipped sequences are read and their arrays
checked but their images are not decoded, so a resume costs one read of the epoch up to that point.
With loader workers, `build_loader` batches inside each worker; every batch carries (worker stream,
position after it) to the main process, which records them, so the state covers every worker. torch's
DataLoader hands out batches round-robin over its workers in a fixed order, skipping exhausted ones; the
state also records which stream comes next, and a resumed loader rotates its workers so that physical
worker 0 plays that stream. Resume therefore needs the same seed, dp_size, dp_rank, shuffle, shards and
number of loader workers (0 and 1 both mean one stream); a mismatch raises `ValueError`. The state names its
dataset (the manifest's sha256, or the hash of the shard names without one), and is refused by any other.

Corrupt shards raise `CorruptShardError` (shard and member named). With `skip_corrupt=True` the rest of
that shard is skipped, a warning is logged once per shard and process, and `stats` counts the shards and
sequences skipped (with a manifest the count is exact; without one, at least the bad sequence). An image
that cannot be decoded skips only its own sequence.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from adapters.megatron.batch import SequenceArrays
from adapters.megatron.images import ImageSpec, preprocess, preprocess_tiles
from adapters.megatron.reweigh import Reweigh
from adapters.megatron.shards import CorruptShardError, ShardInfo, ShardSample, ShardSet, iter_shard, resolve_shards

log = logging.getLogger(__name__)
STATE_FORMAT = "litdata-loader-state"
STATE_VERSION = 2  # 2: the state names its dataset (v1 states did not, so they cannot be checked and are refused)
Position = tuple[int, int]  # (epoch, sequences taken from that epoch's stream)


@dataclass(kw_only=True)
class LoadStats:
    shards_skipped: int = 0
    sequences_skipped: int = 0
    errors: list[str] = field(default_factory=list)  # one message per skip event

    def merged(self, others: Iterable[LoadStats]) -> LoadStats:
        out = LoadStats(**asdict(self))
        for o in others:
            out.shards_skipped += o.shards_skipped
            out.sequences_skipped += o.sequences_skipped
            out.errors += o.errors
        return out


class PackedShardDataset(IterableDataset):
    """Packed sequences from litdata shards (see the module docstring for split, shuffle and resume)."""

    def __init__(
        self,
        data: str | os.PathLike | Sequence[str],
        *,
        dp_rank: int = 0,
        dp_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        epochs: int | None = 1,
        reweigh: Reweigh | None = None,
        image_spec: ImageSpec | None = None,
        skip_corrupt: bool = False,
        verify_checksums: bool = True,
        shuffle_buffer: int = 128,
        image_tokens: int | None = None,
    ) -> None:
        if not 0 <= dp_rank < dp_size:
            raise ValueError(f"dp_rank {dp_rank} is not in [0, dp_size={dp_size})")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None (forever), got {epochs}")
        self.shardset = resolve_shards(data)
        if image_spec is not None and image_tokens is None and self.shardset.manifest is None:
            raise ValueError("image_tokens is needed to expand cu_seqlens: pass it, or read shards with a manifest")
        self._image_tokens = image_tokens
        self._per_image_counts = self.shardset.image_token_rule is not None  # format 2
        self._tile_rule = self._tiles(self.shardset)
        self.dp_rank, self.dp_size, self.seed, self.shuffle, self.epochs = dp_rank, dp_size, seed, shuffle, epochs
        self.reweigh, self.image_spec, self.skip_corrupt = reweigh, image_spec, skip_corrupt
        self.verify_checksums = verify_checksums
        self.shuffle_buffer = shuffle_buffer if shuffle else 0
        self._image_token_id = self.shardset.image_token_id
        self._own_stats = LoadStats()
        self._warned: set[str] = set()  # shards already warned about by this copy (one per worker process)
        self._worker_stats: dict[int, LoadStats] = {}
        self._progress = self._fresh_state(0)
        self._pending: dict | None = None

    # ---- what the collation needs -------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self.shardset.pad_id

    @property
    def image_tokens(self) -> int:
        return self._image_tokens or self.shardset.image_tokens

    @staticmethod
    def _tiles(shardset: ShardSet) -> Any:
        """The compile's tile rule (images are then cut into its tiles), or None."""
        rule = shardset.image_rule() if shardset.image_token_rule is not None else None
        return rule if rule is not None and rule.tiled else None

    @property
    def tiled(self) -> bool:
        return self._tile_rule is not None

    @property
    def stats(self) -> LoadStats:
        return self._own_stats.merged(self._worker_stats.values())

    # ---- iteration ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[SequenceArrays]:
        info = get_worker_info()
        if info is not None:  # inside a plain DataLoader: split, but only build_loader can resume
            for _, seq in self.stream(info.id, info.num_workers, (0, 0)):
                if seq is not None:
                    yield seq
            return
        state = self._start_state(1)
        for position, seq in self.stream(0, 1, tuple(state["positions"][0])):
            self._progress["positions"][0] = list(position)
            if seq is not None:
                yield seq

    def stream(
        self, worker: int, num_workers: int, start: Position
    ) -> Iterator[tuple[Position, SequenceArrays | None]]:
        """The sequences of one slot from `start` on, each with the position after it. None marks a
        sequence skipped as corrupt (the position still advances)."""
        epoch, skip = start
        while self.epochs is None or epoch < self.epochs:
            taken = skip
            for raw in itertools.islice(self._epoch_raw(epoch, worker, num_workers), skip, None):
                taken += 1
                yield (epoch, taken), self._finish(raw)
            if taken == 0:  # never leave a rank silently without data: it would stall the others
                raise ValueError(
                    f"dp rank {self.dp_rank} loader worker {worker} got no sequences in epoch {epoch}: "
                    f"{len(self.shardset.shards)} shards are too little data for {self.dp_size} ranks x "
                    f"{num_workers} workers, or all of its shards were skipped as corrupt "
                    f"({self._own_stats.shards_skipped} skipped)"
                )
            epoch, skip = epoch + 1, 0

    def _epoch_raw(self, epoch: int, worker: int, num_workers: int) -> Iterator[ShardSample]:
        shards = self.shardset.shards
        order = self._shard_order(epoch)
        slots, slot = self.dp_size * num_workers, self.dp_rank * num_workers + worker
        if len(shards) >= slots:
            mine = order[self.dp_rank :: self.dp_size][worker::num_workers]
            items: Iterator[ShardSample] = itertools.chain.from_iterable(
                self._read_shard(shards[i], record=True) for i in mine
            )
        else:  # fewer shards than slots: split by sequence; slot 0 alone records skips so none is counted twice
            every = itertools.chain.from_iterable(self._read_shard(shards[i], record=slot == 0) for i in order)
            items = (raw for i, raw in enumerate(every) if i % slots == slot)
        if self.shuffle_buffer > 1:
            seed = int(np.random.SeedSequence([self.seed, epoch, self.dp_rank, worker]).generate_state(1)[0])
            items = buffer_shuffle(items, random.Random(seed), self.shuffle_buffer)
        return items

    def _shard_order(self, epoch: int) -> list[int]:
        n = len(self.shardset.shards)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng([self.seed, epoch]).permutation(n).tolist()

    def _read_shard(self, info: ShardInfo, *, record: bool) -> Iterator[ShardSample]:
        count = 0
        try:
            for raw in iter_shard(info, verify_checksums=self.verify_checksums, image_token_id=self._image_token_id,
                                  seq_len=self.shardset.seq_len, vocab_size=self.shardset.vocab_size):
                count += 1
                yield raw
        except CorruptShardError as exn:
            if not self.skip_corrupt:
                raise
            if record:
                lost = info.sequences - count if info.sequences is not None else (0 if exn.member == "<tar>" else 1)
                self._skipped(exn, shards=1, sequences=max(lost, 0), what="rest of the shard")

    def _finish(self, raw: ShardSample) -> SequenceArrays | None:
        weights = self.reweigh.apply(raw.classes, raw.cu_seqlens) if self.reweigh else raw.weights
        images: tuple[np.ndarray, ...] = ()
        counts, tiles = None, None
        if self.image_spec is not None:
            try:
                counts, tiles = self._image_counts(raw)
                images = self._decode_images(raw)
            except CorruptShardError as exn:
                if not self.skip_corrupt:
                    raise
                self._skipped(exn, shards=0, sequences=1, what="sequence")
                return None
        return SequenceArrays(
            shard=raw.shard,
            key=raw.key,
            tokens=raw.tokens,
            weights=weights,
            classes=raw.classes,
            cu_seqlens=raw.cu_seqlens,
            images_per_doc=raw.images_per_doc,
            images=images,
            meta=raw.meta,
            image_counts=counts,
            image_tiles=tiles,
        )

    def _image_counts(self, raw: ShardSample) -> tuple[np.ndarray, np.ndarray | None]:
        """Each image's count of positions (KEY.image_tokens.npy; format 1: the fixed count) and tiles."""
        from litdata.shards.reader import FormatProblem, image_tile_counts, image_token_counts
        from litdata.shards.schema import IMAGE_TILES, IMAGE_TOKENS

        n = int(raw.images_per_doc.sum())
        arrays = {k: v for k, v in ((IMAGE_TOKENS, raw.image_counts), (IMAGE_TILES, raw.image_tiles)) if v is not None}
        try:
            counts = image_token_counts(arrays, n, None if self._per_image_counts else self.image_tokens)
            rule = self._tile_rule.spec if self._tile_rule is not None else None
            tiles = image_tile_counts(arrays, n, rule)
        except FormatProblem as p:
            raise CorruptShardError(raw.shard, f"{raw.key}.{p.member}", p.reason) from None
        return counts, tiles if self._tile_rule is not None else None

    def _decode_images(self, raw: ShardSample) -> tuple[np.ndarray, ...]:
        expected = int(raw.images_per_doc.sum())
        if len(raw.image_bytes) != expected:
            raise CorruptShardError(
                raw.shard, f"{raw.key}.img*", f"{len(raw.image_bytes)} images for {expected} placeholders"
            )
        out = []
        for i, (member, data) in enumerate(zip(raw.image_members, raw.image_bytes)):
            try:
                if self._tile_rule is None:
                    out.append(preprocess(data, self.image_spec))
                    continue
                tiles = preprocess_tiles(data, self.image_spec, self._tile_rule)
            except ValueError as exn:
                raise CorruptShardError(raw.shard, member, str(exn)) from None
            if raw.image_tiles is not None and len(tiles) != int(raw.image_tiles[i]):
                raise CorruptShardError(raw.shard, member, f"cut into {len(tiles)} tiles, image_tiles.npy says "
                                                           f"{int(raw.image_tiles[i])}")
            out.extend(tiles)
        return tuple(out)

    def _skipped(self, exn: CorruptShardError, *, shards: int, sequences: int, what: str) -> None:
        self._own_stats.shards_skipped += shards
        self._own_stats.sequences_skipped += sequences
        self._own_stats.errors.append(str(exn))
        if exn.shard not in self._warned:
            self._warned.add(exn.shard)
            log.warning("skipping the %s (%d sequences): %s", what, sequences, exn)

    # ---- state ----------------------------------------------------------------------------------------
    def _fresh_state(self, streams: int) -> dict:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "dataset": self.shardset.dataset_id,  # a position means nothing in another dataset's shards
            "seed": self.seed,
            "dp_rank": self.dp_rank,
            "dp_size": self.dp_size,
            "shuffle": self.shuffle,
            "shards": len(self.shardset.shards),
            "streams": streams,  # max(1, num_workers) of the loader that produced it; 0 = not started
            "next_stream": 0,
            "positions": [[0, 0] for _ in range(streams)],
        }

    def state_dict(self) -> dict:
        """Where the consumer is: enough to resume at the exact next sequence (or batch, via build_loader)."""
        return {**self._progress, "positions": [list(p) for p in self._progress["positions"]]}

    def load_state_dict(self, state: dict) -> None:
        fresh = self._fresh_state(0)
        if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
            raise ValueError(f"not a {STATE_FORMAT} v{STATE_VERSION} state: {state.get('format')!r} "
                             f"v{state.get('version')!r} (a v1 state does not name its dataset and cannot be checked)")
        if state.get("dataset") != fresh["dataset"]:
            raise ValueError(f"cannot resume: the state was saved on another dataset (manifest sha256 "
                             f"{str(state.get('dataset'))[:16]}..., this one {fresh['dataset'][:16]}...)")
        for key in ("seed", "dp_rank", "dp_size", "shuffle", "shards"):
            if state.get(key) != fresh[key]:
                raise ValueError(f"cannot resume: the state has {key}={state.get(key)!r}, this dataset {fresh[key]!r}")
        self._pending = {**state, "positions": [list(p) for p in state["positions"]]}
        self._progress = {**state, "positions": [list(p) for p in state["positions"]]}

    def _start_state(self, streams: int) -> dict:
        """The state an iteration starts from: a loaded one (once), else the beginning."""
        state, self._pending = self._pending, None
        started = state is not None and (
            state["next_stream"] != 0 or any(tuple(p) != (0, 0) for p in state["positions"])
        )
        if not started:
            state = self._fresh_state(streams)
        elif state["streams"] != streams:
            raise ValueError(
                f"cannot resume exactly: the state was saved with {state['streams']} loader stream(s) "
                f"(num_workers={state['streams']}), this loader has {streams}; use the same num_workers"
            )
        self._progress = {**state, "positions": [list(p) for p in state["positions"]]}
        self._worker_stats = {}
        return self._progress


def buffer_shuffle(items: Iterator[Any], rng: random.Random, size: int) -> Iterator[Any]:
    """A bounded shuffle of a stream (webdataset's): `size` items wait, a random one leaves as each arrives."""
    buf: list[Any] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = rng.randrange(size)
        yield buf[j]
        buf[j] = item
    rng.shuffle(buf)
    yield from buf
