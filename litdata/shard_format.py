"""The sample format of a shard (DESIGN.md, 'Shards'): member names, grouping, safe decoding and checks.

`litdata verify`, `litdata inspect` and the Megatron loader all read samples through this module, so that what one
accepts the others accept too. Problems are `FormatProblem`s naming the member and the reason; each caller adds
the shard and turns them into its own error. No tar is opened here: the loader reads tars through webdataset.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from litdata.classes import TokenClass

# The array members of every sample, 1-D each, in the order callers unpack them.
ARRAYS = {"tokens.npy": np.int32, "weights.npy": np.float32, "classes.npy": np.uint8, "cu_seqlens.npy": np.int32}
# Per-image members of samples with images (format 2): each image's expanded count, and tiles for tiling rules.
IMAGE_ARRAYS = {"image_tokens.npy": np.int32, "image_tiles.npy": np.int32}
KEY = re.compile(r"^[0-9A-Za-z_-]+$")  # dot-free, so a member name splits into key and suffix at its first dot
IMAGE = re.compile(r"^img(\d{3,})\.[a-z0-9]+$")  # KEY.imgNNN.EXT, numbered in placeholder order
T = TypeVar("T")


class FormatProblem(ValueError):
    """One thing wrong: `member` is the suffix within the sample (`tokens.npy`, `json`), or the whole member name
    for problems found while grouping members into samples."""

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"{member}: {reason}")
        self.member, self.reason = member, reason


def group_samples(members: Iterable[tuple[str, T]]) -> Iterator[tuple[str, dict[str, T]]]:
    """(member name, payload) in tar order -> (key, {suffix: payload}) per sample. A key's members must be
    contiguous (webdataset streams samples that way), so a key that comes back is an error, not a second sample."""
    key: str | None = None
    group: dict[str, T] = {}
    seen: set[str] = set()
    for name, payload in members:
        k, _, suffix = name.partition(".")
        if not KEY.match(k) or not suffix:
            raise FormatProblem(name, "not KEY.SUFFIX with a dot-free alphanumeric key")
        if k != key:
            if key is not None:
                yield key, group
            if k in seen:
                raise FormatProblem(name, f"members of sample {k} are not contiguous")
            key, group = k, {}
            seen.add(k)
        if suffix in group:
            raise FormatProblem(name, "duplicate member")
        group[suffix] = payload
    if key is not None:
        yield key, group


def tar_samples(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, tarfile.TarInfo]]]:
    """The samples of an open tar with their members unread, so that a reader pays only for what it reads."""

    def regular(info: tarfile.TarInfo) -> tuple[str, tarfile.TarInfo]:
        if not info.isfile():  # the writer makes no links or folders; they could point anywhere
            raise FormatProblem(info.name, "not a regular file")
        return info.name, info

    return group_samples(map(regular, tar))


def image_suffixes(suffixes: Iterable[str]) -> list[str]:
    """A sample's image members, in placeholder order (by number, in case NNN outgrows three digits)."""
    return sorted((s for s in suffixes if IMAGE.match(s)), key=lambda s: int(s[3 : s.index(".")]))


def load_array(suffix: str, data: bytes | None) -> np.ndarray:
    """Decode one array member (None: missing). Never unpickles: a shard can come from anyone."""
    if data is None:
        raise FormatProblem(suffix, "missing")
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)  # object arrays are refused with ValueError
    except (ValueError, OSError, EOFError, TypeError) as e:
        raise FormatProblem(suffix, f"not a plain .npy array ({e})") from None
    if not isinstance(a, np.ndarray):  # an .npz archive loads as a lazy mapping of arrays
        raise FormatProblem(suffix, "not a plain .npy array (an .npz archive)")
    want = ARRAYS.get(suffix) or IMAGE_ARRAYS[suffix]
    if a.dtype != want or a.ndim != 1:
        raise FormatProblem(suffix, f"dtype {a.dtype}{list(a.shape)}, expected {np.dtype(want)}[n]")
    return a


def image_token_counts(arrays: Mapping[str, np.ndarray], n_images: int, fixed: int | None) -> np.ndarray:
    """Each image's count of positions once expanded, int32 [n_images] in placeholder order: the sample's
    `image_tokens.npy` (in `arrays`, keyed by suffix), or for shards written before it existed (format 1) `fixed`,
    the manifest's `config.image_tokens`. Raises FormatProblem when the member is missing and `fixed` is None (a
    sample without images has no member and needs none), or has the wrong dtype, shape or length, or a negative
    count."""
    a = arrays.get("image_tokens.npy")
    if a is None:
        if fixed is None and n_images:
            raise FormatProblem("image_tokens.npy", f"missing ({n_images} images and no fixed count to fall back on)")
        return np.full(n_images, fixed or 0, dtype=np.int32)
    if a.dtype != np.int32 or a.ndim != 1:
        raise FormatProblem("image_tokens.npy", f"dtype {a.dtype}{list(a.shape)}, expected int32[{n_images}]")
    if len(a) != n_images:
        raise FormatProblem("image_tokens.npy", f"{len(a)} counts for {n_images} images")
    if a.min(initial=0) < 0:
        raise FormatProblem("image_tokens.npy", f"negative count {int(a.min())}")
    return a


def load_json(data: bytes | None, *, documents: bool = False) -> Any:
    """Decode `KEY.json` (None: missing); with `documents`, its list of per-document objects, as the compiler
    writes it (other producers may write any JSON, and the loader passes that through)."""
    if data is None:
        raise FormatProblem("json", "missing")
    try:
        meta = json.loads(data)
    except ValueError as e:
        raise FormatProblem("json", f"invalid JSON ({e})") from None
    docs = meta.get("documents") if isinstance(meta, dict) else None
    if documents and (not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs)):
        raise FormatProblem("json", "has no 'documents' list of objects")
    return docs if documents else meta


def array_problems(tokens: np.ndarray, weights: np.ndarray, classes: np.ndarray, cu: np.ndarray,
                   doc_tokens: Sequence[Any] | None = None) -> list[FormatProblem]:
    """What is wrong with a sample's arrays and, given the token counts of KEY.json, its document list.

    A shape problem comes alone: the other checks slice by cu_seqlens, which needs one weight and class per token
    and offsets rising strictly from 0 to len(tokens) (an empty document is a packing bug, not data)."""
    n = len(tokens)
    for suffix, a in (("weights.npy", weights), ("classes.npy", classes)):
        if len(a) != n:
            return [FormatProblem(suffix, f"length {len(a)}, tokens has {n}")]
    if len(cu) < 2 or cu[0] != 0 or cu[-1] != n or np.any(np.diff(cu) <= 0):
        return [FormatProblem("cu_seqlens.npy", f"{cu.tolist()[:8]}... must rise strictly from 0 to {n}")]
    out: list[FormatProblem] = []
    starts = cu[:-1]
    if classes.max(initial=0) >= len(TokenClass):
        out.append(FormatProblem("classes.npy", f"unknown class id {int(classes.max())}"))
    if not np.all(np.isfinite(weights)) or weights.min(initial=0) < 0:
        out.append(FormatProblem("weights.npy", "weights must be finite and >= 0"))
    if np.any(weights[starts] != 0):  # nothing in a document predicts its first token (DESIGN, weight semantics)
        bad = starts[weights[starts] != 0].tolist()
        out.append(FormatProblem("weights.npy", f"weight != 0 at document start(s) {bad}"))
    if doc_tokens is not None and list(doc_tokens) != np.diff(cu).tolist():  # also catches a wrong document count
        out.append(FormatProblem("json", f"document token counts {list(doc_tokens)[:8]} disagree with cu_seqlens"))
    return out
