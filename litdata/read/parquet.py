"""Parquet: record batches of up to 1024 rows (fewer when rows are large), only the columns a record needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from litdata.records import RecordProblem, RejectReason

_COLUMNS = ("id", "image", "images", "conversations", "messages")
BATCH_ROWS = 1024
BATCH_BYTES = 64 * 1024 * 1024


class ParquetOpenError(Exception):
    pass


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise ParquetOpenError(f"not a readable Parquet file: {e}") from None


def iter_parquet(pf: pq.ParquetFile, *, batch_rows: int = BATCH_ROWS,
                 row_groups: range | None = None) -> Iterator[tuple[int, Any]]:
    """(row index, row as a dict or RecordProblem). A row group that fails to decode yields one RecordProblem per
    row it still owed, so the record count stays exact. `row_groups` reads only those groups (the Ray engine's
    partitions), with row indices still counted from the start of the file."""
    names = pf.schema_arrow.names
    shaped = "conversations" in names or "messages" in names
    # Without a turns column every row is rejected; keep all columns so the message lists what the row has.
    columns = [c for c in _COLUMNS if c in names] if shaped else None
    groups = range(pf.num_row_groups) if row_groups is None else row_groups
    index = sum(pf.metadata.row_group(g).num_rows for g in range(groups.start))
    for group in groups:
        meta = pf.metadata.row_group(group)
        owed = meta.num_rows
        # Rows with embedded images can be large: keep a batch near BATCH_BYTES, not a fixed row count.
        row_bytes = meta.total_byte_size // max(owed, 1)
        rows = max(1, min(batch_rows, BATCH_BYTES // max(row_bytes, 1)))
        try:
            for batch in pf.iter_batches(batch_size=rows, row_groups=[group], columns=columns):
                for row in _rows(batch):
                    yield index, row
                    index += 1
                    owed -= 1
        except (pa.ArrowException, OSError) as e:
            for _ in range(owed):
                yield (
                    index,
                    RecordProblem(
                        RejectReason.READ_ERROR,
                        f"row group {group} of the Parquet file could not be read: {str(e).strip()}",
                    ),
                )
                index += 1


# What converting a value to Python raises when Python cannot hold it: a timestamp past year 9999 or before year
# 1 (OverflowError, or ValueError for some units), a decimal or date out of range.
_CONVERSION_ERRORS = (OverflowError, ValueError, pa.ArrowException)


def _rows(batch: pa.RecordBatch) -> list[Any]:
    """The batch's rows as dicts; a row with a value Python cannot hold becomes a RecordProblem, the others stay."""
    try:
        return batch.to_pylist()
    except _CONVERSION_ERRORS:
        pass
    out: list[Any] = []
    for i in range(batch.num_rows):  # the slow path, only for a batch that holds such a row
        try:
            out.append(batch.slice(i, 1).to_pylist()[0])
        except _CONVERSION_ERRORS as e:
            out.append(RecordProblem(RejectReason.BAD_FIELD_TYPE, f"a value cannot be read: {_column_why(batch, i, e)}"))
    return out


def _column_why(batch: pa.RecordBatch, i: int, error: Exception) -> str:
    """Which column holds the value, and what is wrong with it."""
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            column.slice(i, 1).to_pylist()
        except _CONVERSION_ERRORS:
            return f"column {name!r} ({column.type}): {error.__class__.__name__}: {error}"
    return f"{error.__class__.__name__}: {error}"
