from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Provenance:
    """Where a record came from: enough to find it again and to name it in an error."""

    source: str  # the input file as the user gave it
    index: int  # 0-based record index within that file (line number - 1 for JSONL, row for Parquet)
    id: str | None  # the record's own id, when it has one

    def describe(self) -> str:
        rid = f" id={self.id!r}" if self.id is not None else ""
        return f"{self.source}[{self.index}]{rid}"
