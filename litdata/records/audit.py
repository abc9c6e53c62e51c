from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditHit:
    """One harmful span found in a record: a line of harmful_audit.jsonl. The encoder attaches a record's hits
    to what it makes of it (Document or Reject), so they travel in the record's order with no second channel."""

    file: str
    index: int
    id: str | None
    turn: int
    role: str
    text: str
    matcher: str
    score: float | None
    action: str  # "masked" | "dropped"

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}
