from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litdata.images.file import read_verified
from litdata.records.audit import AuditHit
from litdata.records.provenance import Provenance


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageBlob:
    """A verified image, ready to copy into a shard unchanged."""

    ext: str  # lower-case file extension without the dot: jpg, png, ...
    path: str | None = None  # resolved absolute path (bytes are read again when the shard is written)
    data: bytes | None = None  # embedded bytes
    width: int = 0
    height: int = 0
    sha256: str | None = None  # of the file's bytes as checked; a file's bytes are not kept in memory
    size: int = 0

    def read(self) -> bytes:
        """The bytes to copy into a shard; for a file, exactly the bytes that were checked (or ImageChangedError)."""
        if self.data is not None:
            return self.data
        assert self.path is not None and self.sha256 is not None
        return read_verified(self.path, sha256=self.sha256, size=self.size)


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """One tokenized conversation with its token classes and weights: the unit that packing places into sequences."""

    provenance: Provenance
    tokens: np.ndarray  # int32 [n]
    classes: np.ndarray  # uint8 [n]
    weights: np.ndarray  # float32 [n]; weights[0] == 0
    images: tuple[ImageBlob, ...] = ()
    truncated_from: int | None = None  # original token count when --overflow truncate cut the document
    meta: dict = field(default_factory=dict)
    # Per image, in placeholder order: positions it takes once expanded (the --image-tokens rule's count), and
    # tiles for tiling rules. Empty when made without a rule (then `expanded_length` takes one fixed count).
    image_counts: tuple[int, ...] = ()
    image_tiles: tuple[int, ...] = ()
    audit: tuple[AuditHit, ...] = ()  # harmful spans found in it (masked), for harmful_audit.jsonl

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def expanded_length(self, image_tokens: int = 1) -> int:
        """Positions with every image placeholder expanded: each image's own count where the document carries
        counts, else `image_tokens` per image."""
        if self.image_counts:
            return self.n_tokens + sum(self.image_counts) - len(self.image_counts)
        return self.n_tokens + len(self.images) * (image_tokens - 1)
