"""Per-record limits the readers enforce, so that one pathological record cannot stall or exhaust a run."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, kw_only=True, slots=True)
class ReadLimits:
    max_turns: int = 512
    max_turn_chars: int = 200_000
    max_images: int = 64
    # The raw JSON text of one record (a JSONL line or a JSON array element). Bounds the reader's memory: a
    # record this large is skipped without being held and rejected as record_too_large.
    max_record_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ReadLimits.{f.name} must be a positive integer, got {value!r}")
