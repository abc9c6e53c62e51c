"""Parquet: record batches of up to 1024 rows (fewer when rows are large), only the columns a record needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from litdata.read.problem import RecordError
from litdata.records import RejectReason

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
    """(row index, row as a dict or RecordError). A row group that fails to decode yields one RecordError per
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
                for row in batch.to_pylist():
                    yield index, row
                    index += 1
                    owed -= 1
        except (pa.ArrowException, OSError) as e:
            for _ in range(owed):
                yield (
                    index,
                    RecordError(
                        RejectReason.READ_ERROR,
                        f"row group {group} of the Parquet file could not be read: {str(e).strip()}",
                    ),
                )
                index += 1
