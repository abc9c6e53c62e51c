"""Fixed partitions of the inputs for a distributed compile, and the reading of one partition.

A partition depends only on the inputs and `partition_bytes`, never on how many workers or nodes run, so
the work and its results are the same on a laptop and on a cluster:
- JSON Lines: byte ranges of `partition_bytes`; a range owns the lines that *start* inside it (a line that
  runs past the range's end is read whole by the range it starts in, the next range skips its tail);
- Parquet: runs of consecutive row groups, a new run once the previous reaches `partition_bytes`;
- a JSON array: runs of elements, cut through an offset index (`index_arrays`: one streaming pass over the
  file, as the local reader reads it) at the first element that starts `partition_bytes` or more after the
  previous cut. Each cut holds the reader's state there, so a partition reads on exactly as one reader over
  the whole file would, also after a broken element was resynchronised (litdata/read/jsonarray/index.py).
Read in partition order, the records come out exactly as `read_sources` gives them: the same items, the
same provenance indices and the same reject messages, because each partition reader is the local reader
started at the partition's first record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from litdata import fsio
from litdata.config import ReadLimits
from litdata.read.jsonarray.index import JsonArrayCut, index_json_array, iter_json_array_piece
from litdata.read.jsonl import iter_jsonl
from litdata.read.parquet import iter_parquet
from litdata.read.sources import SourceError, opened_parquet, record_item, source_format
from litdata.records import Conversation, Reject

DEFAULT_PARTITION_BYTES = 64 * 2**20


@dataclass(frozen=True, kw_only=True)
class Partition:
    number: int  # position in the job: results are consumed in this order
    source: str  # the input as the user gave it (provenance names it)
    fmt: str  # "json" | "jsonl" | "parquet"
    start: int  # jsonl: first byte; parquet: first row group; json: first element
    stop: int  # jsonl: end byte (exclusive); parquet: end row group (exclusive); json: end element or -1 (the end)
    cut: JsonArrayCut | None = None  # json: the reader's state at element `start` (None: the file's start)

    def describe(self) -> str:
        unit = {"jsonl": "bytes", "parquet": "row groups", "json": "elements"}[self.fmt]
        return f"{self.source} [{unit} {self.start}:{'end' if self.stop < 0 else self.stop}]"


ArrayIndex = Callable[[Sequence[str], int, ReadLimits], Mapping[str, list[JsonArrayCut]]]


def index_arrays(arrays: Sequence[str], partition_bytes: int, limits: ReadLimits) -> dict[str, list[JsonArrayCut]]:
    """The cuts of each JSON array, read here one after another (the Ray engine runs `index_array` as tasks)."""
    return {source: index_array(source, partition_bytes, limits) for source in arrays}


def index_array(source: str, partition_bytes: int, limits: ReadLimits) -> list[JsonArrayCut]:
    """One pass over a JSON array: where its partitions start. Depends on the file, the partition size and
    max_record_bytes (which decides where an oversized element ends), never on the cluster."""
    try:
        with fsio.open_binary(source) as f:
            return index_json_array(f, max_record_bytes=limits.max_record_bytes, every_bytes=partition_bytes)
    except OSError as e:
        raise SourceError(f"{source}: reading failed: {e}") from None


def plan_partitions(sources: Sequence[str], partition_bytes: int = DEFAULT_PARTITION_BYTES,
                    limits: ReadLimits | None = None, index: ArrayIndex = index_arrays) -> list[Partition]:
    """Every input cut into partitions, in input order. Raises SourceError for an unreadable input, before any
    work starts (as `read_sources` does). `index` finds the cuts of the JSON arrays among the inputs."""
    limits = limits or ReadLimits()
    if partition_bytes < 1:
        raise ValueError(f"partition_bytes must be >= 1, got {partition_bytes}")
    formats = [(source, source_format(source)) for source in sources]
    arrays = list(dict.fromkeys(source for source, fmt in formats if fmt == "json"))
    array_cuts = index(arrays, partition_bytes, limits) if arrays else {}
    parts: list[Partition] = []
    for source, fmt in formats:
        if fmt == "json":
            cuts = array_cuts[source]
            starts, stops = [None, *cuts], [c.index for c in cuts] + [-1]
            for cut, stop in zip(starts, stops):
                parts.append(Partition(number=len(parts), source=source, fmt=fmt, start=cut.index if cut else 0,
                                       stop=stop, cut=cut))
            continue
        for start, stop in _cuts(source, fmt, partition_bytes):
            parts.append(Partition(number=len(parts), source=source, fmt=fmt, start=start, stop=stop))
    return parts


def _cuts(source: str, fmt: str, partition_bytes: int) -> list[tuple[int, int]]:
    if fmt == "jsonl":
        size = fsio.size(source)
        return [(a, min(a + partition_bytes, size)) for a in range(0, max(size, 1), partition_bytes)]
    if fmt == "parquet":
        with opened_parquet(source) as pf:
            sizes = [pf.metadata.row_group(g).total_byte_size for g in range(pf.num_row_groups)]
        cuts, first, acc = [], 0, 0
        for g, n in enumerate(sizes):
            acc += n
            if acc >= partition_bytes:
                cuts.append((first, g + 1))
                first, acc = g + 1, 0
        if first < len(sizes) or not cuts:
            cuts.append((first, len(sizes)))
        return cuts
    raise ValueError(f"no byte or row group cuts for format {fmt!r}")


class PartitionReader:
    """The items of one partition, in order; after iterating, `lines` is how many record slots it covered
    (JSONL lines, blank ones included; rows; array elements), which numbers the next partition of its file."""

    def __init__(self, part: Partition, limits: ReadLimits, *, first_index: int = 0) -> None:
        self.part, self.limits, self.first_index = part, limits, first_index
        self.lines = 0

    def __iter__(self) -> Iterator[Conversation | Reject]:
        part = self.part
        try:
            for index, value in self._records():
                yield record_item(value, part.source, index, self.limits)
        except OSError as e:
            raise SourceError(f"{part.describe()}: reading failed: {e}") from None

    def _records(self):
        part, max_bytes = self.part, self.limits.max_record_bytes
        if part.fmt == "parquet":
            with opened_parquet(part.source) as pf:
                groups = range(part.start, part.stop)
                self.lines = sum(pf.metadata.row_group(g).num_rows for g in groups)
                yield from iter_parquet(pf, row_groups=groups)
            return
        with fsio.open_binary(part.source) as f:
            if part.fmt == "json":
                stop = None if part.stop < 0 else part.stop
                for index, value in iter_json_array_piece(f, part.cut, stop, max_record_bytes=max_bytes):
                    self.lines += 1
                    yield index, value
                return
            lines = _LineRange(f, part.start, part.stop)
            yield from iter_jsonl(lines, max_record_bytes=max_bytes, first_index=self.first_index)
            self.lines = lines.lines


class _LineRange:
    """The lines of a binary file that start in [start, stop), as a file for `iter_jsonl` (which only calls
    `readline`). A line that starts inside the range is given whole, past `stop` if need be."""

    def __init__(self, f: IO[bytes], start: int, stop: int) -> None:
        self.f, self.stop = f, stop
        self.lines = 0
        self._at_line_start = True
        if start > 0:  # skip the tail of the line the previous range owns
            f.seek(start - 1)
            while (piece := f.readline(1 << 20)) and not piece.endswith(b"\n"):
                pass

    def readline(self, limit: int = -1) -> bytes:
        if self._at_line_start and self.f.tell() >= self.stop:
            return b""
        line = self.f.readline(limit)
        if line and self._at_line_start:
            self.lines += 1
        self._at_line_start = line.endswith(b"\n")
        return line
