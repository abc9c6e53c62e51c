from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from litdata.records.provenance import Provenance

IMAGE_PLACEHOLDER = "<image>"


class Role(str, Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, kw_only=True, slots=True)
class Turn:
    role: Role
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageRef:
    """An image as the record names it: a path under --image-root, or bytes embedded in the source."""

    path: str | None = None  # as written in the record (relative to --image-root), or the embedded file's name
    data: bytes | None = None  # embedded bytes (Parquet {"bytes": ..., "path": ...})


@dataclass(frozen=True, kw_only=True, slots=True)
class Conversation:
    """One validated input record: turns in order (optional leading system turn, then user/assistant pairs).

    Invariants established by the readers: turns alternate user, assistant, ... and end with an assistant
    turn; no turn text is empty; the number of IMAGE_PLACEHOLDER occurrences equals len(images).
    """

    provenance: Provenance
    turns: tuple[Turn, ...]
    images: tuple[ImageRef, ...] = ()
