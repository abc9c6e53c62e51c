from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litdata.records.provenance import Provenance


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageBlob:
    """A verified image, ready to copy into a shard unchanged."""

    ext: str  # lower-case file extension without the dot: jpg, png, ...
    path: str | None = None  # resolved absolute path (bytes are read again when the shard is written)
    data: bytes | None = None  # embedded bytes
    width: int = 0
    height: int = 0

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as f:
            return f.read()


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """One tokenized, classified and weighted conversation: the unit that packing places into sequences."""

    provenance: Provenance
    tokens: np.ndarray  # int32 [n]
    classes: np.ndarray  # uint8 [n]
    weights: np.ndarray  # float32 [n]; weights[0] == 0
    images: tuple[ImageBlob, ...] = ()
    truncated_from: int | None = None  # original token count when --overflow truncate cut the document
    meta: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    def expanded_length(self, image_tokens: int) -> int:
        return self.n_tokens + len(self.images) * (image_tokens - 1)
