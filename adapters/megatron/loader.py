"""`build_loader`: batches of packed sequences from a `PackedShardDataset`, built inside the loader workers.

Every worker plays one stream of the dataset (see data.py for the split) and batches it itself; each batch carries
(stream, position after it, stats) to the main process, which records them, so `state_dict()` covers every
worker and resumes at the exact next batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from adapters.megatron.batch import SequenceArrays, collate
from adapters.megatron.data import LoadStats, PackedShardDataset, Position


class _BatchSource(IterableDataset):
    """What runs in each loader worker: one stream's batches, each with (stream, position after, stats)."""

    def __init__(self, dataset: PackedShardDataset, *, micro_batch_size: int, seq_len: int, state: dict) -> None:
        self.dataset, self.micro_batch_size, self.seq_len, self.state = dataset, micro_batch_size, seq_len, state

    def __iter__(self) -> Iterator[tuple[int, Position, LoadStats, dict | None]]:
        ds, streams = self.dataset, self.state["streams"]
        info = get_worker_info()
        stream = ((info.id if info else 0) + self.state["next_stream"]) % streams
        start: Position = tuple(self.state["positions"][stream])
        if ds.epochs is not None and start[0] >= ds.epochs:
            return  # finished before the state was saved, final report included
        spec = ds.image_spec
        kwargs: dict[str, Any] = {"seq_len": self.seq_len, "pad_id": ds.pad_id}
        if spec is not None:
            kwargs.update(image_tokens=ds.image_tokens, image_size=spec.size)
        pending: list[SequenceArrays] = []
        position = start
        for position, seq in ds.stream(stream, streams, start):
            if seq is not None:
                pending.append(seq)
            if len(pending) == self.micro_batch_size:
                yield stream, position, ds._own_stats, collate(pending, **kwargs)
                pending = []
        if pending:
            pending += [SequenceArrays.empty()] * (self.micro_batch_size - len(pending))
            yield stream, position, ds._own_stats, collate(pending, **kwargs)
        # A last item with no batch: the final stats, and the mark that this stream is done.
        yield stream, (ds.epochs or 0, 0), ds._own_stats, None


class ShardLoader:
    """Iterable of batch dicts (the batch contract); `state_dict()` resumes at the exact next batch."""

    def __init__(
        self,
        dataset: PackedShardDataset,
        *,
        micro_batch_size: int,
        seq_len: int,
        num_workers: int = 0,
        prefetch_factor: int = 2,
        pin_memory: bool = False,
    ) -> None:
        manifest_seq_len = dataset.shardset.seq_len
        if manifest_seq_len is not None and seq_len < manifest_seq_len:
            raise ValueError(f"seq_len {seq_len} is shorter than the shards' seq_len {manifest_seq_len}")
        if micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
        self.dataset, self.micro_batch_size, self.seq_len = dataset, micro_batch_size, seq_len
        self.num_workers, self.prefetch_factor, self.pin_memory = num_workers, prefetch_factor, pin_memory

    def __iter__(self) -> Iterator[dict]:
        ds = self.dataset
        streams = max(1, self.num_workers)
        state = ds._start_state(streams)
        source = _BatchSource(ds, micro_batch_size=self.micro_batch_size, seq_len=self.seq_len, state=dict(state))
        if self.num_workers == 0:
            items: Iterable = source
        else:
            items = DataLoader(
                source,
                batch_size=None,
                num_workers=self.num_workers,
                prefetch_factor=self.prefetch_factor,
                pin_memory=self.pin_memory,
            )
        for stream, position, stats, batch in items:
            state["positions"][stream] = list(position)
            state["next_stream"] = (stream + 1) % streams
            if self.num_workers:
                ds._worker_stats[stream] = stats
            if batch is not None:
                yield batch

    def state_dict(self) -> dict:
        return self.dataset.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.dataset.load_state_dict(state)

    @property
    def stats(self) -> LoadStats:
        return self.dataset.stats


def build_loader(
    dataset: PackedShardDataset, *, micro_batch_size: int, seq_len: int, num_workers: int = 0, **kwargs: Any
) -> ShardLoader:
    """Batches of `micro_batch_size` packed sequences padded to `seq_len`, built inside the loader workers
    (one stream each, round-robin) so that the loader state stays exact; see the module docstring."""
    return ShardLoader(dataset, micro_batch_size=micro_batch_size, seq_len=seq_len, num_workers=num_workers, **kwargs)
