"""Shards written in parallel by Ray tasks, with the bytes of the local engine's sequential `ShardWriter`.

The driver still sees every packed sequence in packing order, encodes its sample's members (`build_sample`),
and cuts them into shards with the same `ShardPlan` from their sizes, which need no image bytes; so the
boundaries are decided before any shard is written. Each complete run of samples becomes one `write_shard`
task (copying images, hashing, the atomic rename), which returns its ShardEntry and layout; the driver takes
them in shard order, so the manifest, `.idx` files and `.nv-meta` that follow are the local ones.

The tasks write into the output folder themselves: a local `--out` must be the same folder on every node (one
machine, or a shared file system). Each shard's name is claimed by the driver before its task is submitted, as
the sequential writer claims it before creating the file, so an interrupted run's shards are known as its own.
A retried task (its worker died) rewrites its shard from the same arguments, so the bytes do not change.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litdata.engines import EngineError, ray_result
from litdata.pack.packer import PackedSequence
from litdata.shards.schema import SHARD_PATTERN
from litdata.shards.writer import Sample, ShardPlan, WrittenShard, build_sample, write_shard

_ABORT_WAIT_S = 30  # on abort, how long cancelled tasks get to remove their temporaries before Ray shuts down


class RayShardWriter:
    """`ShardWriter`'s interface (write, close, abort), with each shard written by a Ray task.

    At most `in_flight` shard tasks are submitted but not yet collected, so the driver holds at most that many
    runs of sequences (plus the one it is filling) whatever the number of shards.
    """

    def __init__(self, out_dir: Path, *, max_bytes: int, max_sequences: int, claim: Callable[[str], None],
                 in_flight: int, max_retries: int) -> None:
        import ray

        self._ray = ray
        self.out_dir, self.claim, self.in_flight = Path(out_dir), claim, max(1, in_flight)
        self.max_retries = max_retries
        self._task = ray.remote(num_cpus=1, max_retries=max_retries)(write_shard)
        self._plan = ShardPlan(max_bytes=max_bytes, max_sequences=max_sequences)
        self._run: list[Sample] = []
        self._first_key = 0  # the sample key of the run's first sequence: keys number sequences across shards
        self._pending: deque[tuple[Any, str]] = deque()  # (task, shard name), in shard order
        self.written: list[WrittenShard] = []  # in shard order: entries for the manifest, layouts for the index
        self.tasks = 0  # shard tasks submitted (each writes one shard)

    def write(self, seq: PackedSequence) -> None:
        sample = build_sample(seq)  # encoded once, here: the task only copies images and writes
        if self._plan.add(sample.size):
            self._submit()
        self._run.append(sample)

    def close(self) -> list[WrittenShard]:
        if self._run:
            self._submit()
        while self._pending:
            self._collect()
        return self.written

    def abort(self) -> None:
        """Cancel the shard tasks still running; each removes its own temporary (write_shard) when interrupted.
        Shards already renamed stay: they are complete and claimed, so a rerun keeps or replaces them."""
        refs = [ref for ref, _ in self._pending]
        self._pending.clear()
        for ref in refs:
            self._ray.cancel(ref)
        if refs:
            self._ray.wait(refs, num_returns=len(refs), timeout=_ABORT_WAIT_S)

    def _submit(self) -> None:
        index = len(self.written) + len(self._pending)
        name = SHARD_PATTERN.format(index)
        self.claim(name)
        ref = self._task.remote(str(self.out_dir), index, self._first_key, self._run)
        self._pending.append((ref, name))
        self.tasks += 1
        self._first_key += len(self._run)
        self._run = []
        while len(self._pending) > self.in_flight:
            self._collect()

    def _collect(self) -> None:
        ref, name = self._pending.popleft()
        written = self._get(ref, name)
        entry = written.entry
        path = self.out_dir / name
        if not path.is_file() or path.stat().st_size != entry.bytes:
            raise EngineError(f"{name} was written by a Ray worker but is not in --out {self.out_dir} as seen "
                              "here: with --engine ray a local --out must be one folder shared by every node "
                              "(or give an s3:// or gs:// URL)")
        self.written.append(written)

    def _get(self, ref, name: str) -> WrittenShard:
        from litdata.images.file import ImageChangedError

        # As the local engine raises them: an image changed since it was checked, or the disk is full.
        return ray_result(self._ray, ref, f"writing {name}", retries=self.max_retries,
                          passed_on=(ImageChangedError, OSError))
