"""The work of one partition, as plain functions (the Ray engine runs them as tasks; tests call them directly).

Pass 1 (`count_partition`) reads a partition and counts what the local mining pass counts, with the same
`chunk_rows` code; pass 2 (`encode_partition`) reads it again and encodes it with the local engine's `Encoder`.
Both are pure functions of their arguments, so a retried task returns the same result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from litdata.chunked import chunked
from litdata.config import ReadLimits
from litdata.engines.partitions import Partition, PartitionReader
from litdata.records import Conversation


@dataclass(frozen=True, kw_only=True)
class Counted:
    """Pass 1 of one partition."""

    lines: int  # record slots covered: numbers the next partition of the same file
    records: int  # items read (conversations and rejects)
    conversations: int  # what mining numbers its records by
    shape_rows: Any  # pyarrow.Table (record, shape, example) with records numbered from 0, or None (no mining)


def count_partition(part: Partition, first_index: int, limits: ReadLimits, mining) -> Counted:
    """Read a partition once: its size in records, and, when mining is on, its user-sentence shape rows.

    `chunk_rows` numbers records from 0 here; the driver shifts them by the conversations of the partitions
    before, so the merged counts are exactly those of one pass over all the inputs (litdata/spans/mining.py).
    """
    reader = PartitionReader(part, limits, first_index=first_index)
    records = 0
    conversations = 0
    frames = []
    splitter = None
    if mining.enabled:
        from litdata.spans.sentences import SentenceSplitter

        splitter = SentenceSplitter()

    def convs() -> Iterator[Conversation]:
        nonlocal records
        for item in reader:
            records += 1
            if isinstance(item, Conversation):
                yield item

    for chunk in chunked(convs(), mining.chunk_size):
        if splitter is not None:
            from litdata.spans.mining import chunk_rows

            frames.append(chunk_rows(chunk, conversations, splitter))
        conversations += len(chunk)
    rows = None
    if frames:
        import polars as pl

        rows = pl.concat(frames).to_arrow()
    return Counted(lines=reader.lines, records=records, conversations=conversations, shape_rows=rows)


_ENCODER: tuple[Any, Any] | None = None  # (EncodeSpec, Encoder) of this worker process


def _encoder(spec):
    """One Encoder per worker process and spec: loading the tokenizer and spaCy costs seconds, and a Ray
    worker process runs many partitions of a job."""
    global _ENCODER
    if _ENCODER is None or _ENCODER[0] != spec:
        from litdata.encode import Encoder

        _ENCODER = (spec, Encoder(spec))
    return _ENCODER[1]


def encode_partition(part: Partition, first_index: int, limits: ReadLimits, spec, batch_size: int) -> list[list]:
    """Every item of a partition encoded, as the local engine's batches of Documents and Rejects, in order."""
    items = PartitionReader(part, limits, first_index=first_index)
    # As the local engine's one encoding process: the tokenizer's native call beside the reading and Python work.
    return list(_encoder(spec).encode_batches(chunked(items, batch_size)))
