"""`litdata compile --engine ray`: the two data passes as Ray Core tasks over fixed partitions.

The driver (the `litdata compile` process) keeps everything that decides the output bytes and is cheap:
merging the shape counts in partition order, packing the documents in input order, cutting the packed
sequences into shards, writing rejects, templates and the manifest (litdata/pipeline.py, the same code as the
local engine). The workers do what is per record or per shard and expensive: reading and parsing, sentence
splitting for mining, encoding, and writing each shard (`shards.py`: copying images, hashing).

Why Ray Core and not Ray Data: Ray Data does not keep row order unless told to, checkpoints only read-to-write
pipelines and names webdataset files by uuid; litdata needs its own partitions, order and shard names, which
are a few tasks and an ordered gather in Ray Core.

Faults: each task is a pure function of its arguments and is retried by Ray (`max_retries`) when its worker
process or node dies, so a retried partition gives the same result and the output stays byte-identical. The
driver keeps each partition's results in the output folder as they arrive (`store.py`), so a driver that dies
is rerun with the same command and skips the partitions it had; they are removed once the compile succeeds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from litdata.engines import EngineError, ray_result
from litdata.engines.partitions import DEFAULT_PARTITION_BYTES, Partition, index_array, plan_partitions
from litdata.engines.store import WORK_DIR, PartitionStore
from litdata.engines.tasks import Counted, count_partition, encode_partition
from litdata.read.sources import SourceError

MAX_RETRIES = 3  # per task, on a worker or node that died (Ray's own default, made explicit)


class RayEngine:
    """Runs the mining and encoding passes of `compile_dataset` on a Ray cluster, and writes its shards there.

    `workers` tasks run at once (each takes one CPU), and results for at most 2 x `workers` partitions wait
    for the driver, so driver memory does not grow with the input. Without `address` a local Ray instance with
    `workers` CPUs is started for the job (unless this process is already connected to one).
    """

    def __init__(self, *, address: str | None = None, workers: int = 1,
                 partition_bytes: int = DEFAULT_PARTITION_BYTES, progress: bool = False) -> None:
        self.address, self.workers, self.partition_bytes = address, workers, partition_bytes
        self.progress = progress
        self._started_ray = False
        self._parts: list[Partition] = []
        self._first_index: list[int] = []
        self._bar: Any = None
        self._records_done = 0
        self._t0 = 0.0
        self._out: Any = None  # the OutputWriter of the compile, once keep_partitions was called
        self._store: PartitionStore | None = None
        # JSON arrays indexed ("index") and partitions per pass ("count", "encode"): taken from the store, and
        # run as tasks.
        self.reused = {"index": 0, "count": 0, "encode": 0}
        self.computed = {"index": 0, "count": 0, "encode": 0}
        # A URL --out is staged in a folder on this machine only (output/remote.py): the driver writes its shards.
        self.shards_on_driver = False
        self._shard_writer: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        from litdata.images.file import ImageChangedError

        # Kept partitions serve only a rerun of a failed compile. Not after an image changed: their documents
        # name the old image's sha256, so the rerun must encode again.
        if self._out is not None and (exc_type is None or issubclass(exc_type, ImageChangedError)):
            self._out.release(WORK_DIR)
        self.close()

    def keep_partitions(self, out, run_key: str) -> None:
        """Keep completed partitions in the output folder `out` (an OutputWriter prepared for `run_key`), and reuse
        those an earlier run of the same job left there."""
        out.claim(WORK_DIR)  # recorded before it exists, so that --overwrite or another job's run removes it
        self._out, self._store = out, PartitionStore(out.path / WORK_DIR, run_key)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise EngineError("--engine ray needs Ray: pip install 'litdata-lit[ray]'") from None
        if ray.is_initialized():
            return ray
        try:
            if self.address:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
        except Exception as e:  # noqa: BLE001 - Ray raises bare Exceptions too (e.g. a raylet start-up timeout)
            ray.shutdown()
            where = f"the Ray cluster at --ray-address {self.address}" if self.address else "a local Ray instance"
            raise EngineError(f"cannot start or reach {where}: {e}") from None
        self._started_ray = True
        return ray

    # -- the two passes (called by litdata.pipeline.compile_dataset) ------------------------------------------
    def mine(self, sources: tuple[str, ...], limits, mining) -> tuple[Any, int]:
        """Pass 1: (the template table, records read). The table equals the local engine's exactly: the
        shape rows of every partition go into one ShapeCounter in partition order, records renumbered."""
        import polars as pl

        from litdata.spans.mining import ShapeCounter
        from litdata.spans.table import TemplateTable

        ray = self._connect()
        self._parts = plan_partitions(sources, self.partition_bytes, limits, index=self._index_arrays)
        self._start_bar()
        count = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(count_partition)
        counter = ShapeCounter()
        conversations = records = 0
        first_index: list[int] = []
        next_line = 0  # index of the next partition's first record, within the file being read

        # A JSONL partition's first index is the number of lines in the partitions of its file before it, which
        # is what this pass counts, so pass 1 runs before the numbering is known. Counting does not depend on it,
        # except that a byte order mark is stripped only at index 0: so 0 for a file's first partition, and any
        # other number for the rest (pass 2 gets the true ones).
        def submit(i: int):
            return count.remote(self._parts[i], 0 if self._parts[i].start == 0 else 1, limits, mining)

        for part, got in zip(self._parts, self._ordered(submit, len(self._parts), "count")):
            got: Counted
            first_index.append(0 if part.start == 0 else next_line)  # a file's partitions are consecutive
            next_line = first_index[-1] + got.lines
            if got.shape_rows is not None:
                rows = pl.from_arrow(got.shape_rows).with_columns(pl.col("record") + conversations)
                counter.add(rows)
            conversations += got.conversations
            records += got.records
            self._advance(got.records)
        self._first_index = first_index
        n_records = conversations if mining.enabled else 0  # the local pass does not read when mining is off
        return TemplateTable.build(counter.result(), n_records=n_records, settings=mining), records

    def encoded(self, limits, spec, batch_size: int) -> Iterator[list]:
        """Pass 2: the local engine's batches of encoded items (Document or Reject), in input order."""
        import ray

        encode = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(encode_partition)
        spec_ref = ray.put(spec)  # the template shapes and weights, stored once instead of sent with every task

        def submit(i: int):
            return encode.remote(self._parts[i], self._first_index[i], limits, spec_ref, batch_size)

        for batches in self._ordered(submit, len(self._parts), "encode"):
            self._advance(sum(len(items) for items in batches))
            yield from batches

    def shard_writer(self, out_dir, *, max_bytes: int, max_sequences: int, claim) -> Any:
        """The writer of the packed sequences: shards written by Ray tasks (`shards.py`), or here, one after
        another, for a staged URL --out. Either gives the local engine's bytes."""
        from litdata.engines.shards import RayShardWriter
        from litdata.shards.writer import ShardWriter

        if self.shards_on_driver:
            return ShardWriter(out_dir, max_bytes=max_bytes, max_sequences=max_sequences, claim=claim)
        self._shard_writer = RayShardWriter(out_dir, max_bytes=max_bytes, max_sequences=max_sequences, claim=claim,
                                            in_flight=self.workers, max_retries=MAX_RETRIES)
        return self._shard_writer

    @property
    def shard_tasks(self) -> int:
        """Shards written by Ray tasks in this job (0 when the driver wrote them)."""
        return self._shard_writer.tasks if self._shard_writer is not None else 0

    def _index_arrays(self, arrays, partition_bytes: int, limits) -> dict:
        """The offset index of each JSON array, one task per file, all at once (each is one pass over its file)."""
        import ray

        store = self._store
        cuts = {source: store.load_index(source, partition_bytes) for source in arrays} if store else {}
        todo = [source for source in arrays if cuts.get(source) is None]
        index = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(index_array)
        refs = [index.remote(source, partition_bytes, limits) for source in todo]
        for source, ref in zip(todo, refs):
            cuts[source] = self._get(ray, ref, source)
            if store is not None:
                store.save_index(source, partition_bytes, cuts[source])
        self.reused["index"] += len(arrays) - len(todo)
        self.computed["index"] += len(todo)
        return cuts

    # -- scheduling --------------------------------------------------------------------------------------------
    def _ordered(self, submit: Callable[[int], Any], n: int, kind: str) -> Iterator[Any]:
        """Results of pass `kind` for partitions 0..n-1 in order: from the store where an earlier run kept them,
        else from tasks, with `workers` running at once and at most 2 x `workers` submitted but not yet handed
        to the caller. Each task's result is stored before it is handed on."""
        import ray

        store = self._store
        stored = {i for i in range(n) if store is not None and store.has(kind, self._parts[i])}
        if store is not None:
            load, save = ((store.load_counted, store.save_counted) if kind == "count"
                          else (store.load_encoded, store.save_encoded))
        running: dict[Any, int] = {}
        finished: dict[int, Any] = {}
        submitted = handed = 0
        while handed < n:
            while submitted < n and (submitted in stored or (len(running) < self.workers
                                                             and submitted - handed < 2 * self.workers)):
                if submitted not in stored:
                    running[submit(submitted)] = submitted
                    self.computed[kind] += 1
                submitted += 1
            if handed in stored:
                got = load(self._parts[handed])
                stored.discard(handed)
                if got is None:  # cut short by the kill, or altered since: computed again
                    running[submit(handed)] = handed
                    self.computed[kind] += 1
                    continue
                self.reused[kind] += 1
                yield got
                handed += 1
                continue
            if handed in finished:
                got = self._get(ray, finished.pop(handed), self._parts[handed])
                if store is not None:
                    save(self._parts[handed], got)
                yield got
                handed += 1
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                finished[running.pop(ref)] = ref

    @staticmethod
    def _get(ray, ref, part: Partition | str) -> Any:
        what = f"partition {part.describe()}" if isinstance(part, Partition) else f"indexing {part}"
        return ray_result(ray, ref, what, retries=MAX_RETRIES, passed_on=(SourceError,))

    # -- progress: one bar over both passes ----------------------------------------------------------------
    def _start_bar(self) -> None:
        self._t0 = time.perf_counter()
        if self.progress:
            from tqdm import tqdm

            self._bar = tqdm(desc="compile (ray)", unit="part", total=2 * len(self._parts))

    def _advance(self, records: int) -> None:
        self._records_done += records
        if self._bar is not None:
            rate = self._records_done / max(time.perf_counter() - self._t0, 1e-9)
            self._bar.set_postfix_str(f"{rate:,.0f} rec/s", refresh=False)
            self._bar.update(1)
