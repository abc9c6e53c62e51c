"""The sample format of a shard (DESIGN.md, 'Shards'): member names, grouping, safe decoding and checks.

`litdata verify`, `litdata inspect` and the Megatron loader all read samples through this module, so that what one
accepts the others accept too. Problems are `FormatProblem`s naming the member and the reason; each caller adds
the shard and turns them into its own error. Shard files are opened here (`open_regular`), and every member
checked before it is read (`check_member`), so that no size from an untrusted header is ever trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from litdata.classes import TokenClass
from litdata.shards.schema import (
    ARRAYS,
    IMAGE,
    IMAGE_ARRAYS,
    IMAGE_TILES,
    IMAGE_TOKENS,
    JSON,
    KEY,
    MAX_IMAGE_BYTES,
    MAX_JSON_BYTES,
    MAX_OTHER_BYTES,
    NPY_HEADER_MAX,
    SHARD_NAME,
    max_items,
)

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


def max_member_bytes(suffix: str, seq_len: int | None) -> int:
    """The most bytes a member with this suffix may hold in a shard compiled for `seq_len` (None: unknown)."""
    if suffix.endswith(".npy"):  # every array holds at most seq_len + 1 items (cu_seqlens), none wider than 8 bytes
        return NPY_HEADER_MAX + 8 * max_items(seq_len)
    if suffix == "json":
        return MAX_JSON_BYTES
    if IMAGE.match(suffix):
        return MAX_IMAGE_BYTES
    return MAX_OTHER_BYTES


def check_member(info: tarfile.TarInfo, seq_len: int | None = None) -> None:
    """Refuse a member before reading it: only plain regular files (the writer makes no links, folders or sparse
    files; links could point anywhere, a sparse member expands far beyond the shard) within the size bound."""
    if not info.isreg() or info.issparse():
        raise FormatProblem(info.name, "not a regular file" + (" (a sparse member)" if info.issparse() else ""))
    limit = max_member_bytes(info.name.partition(".")[2], seq_len)
    if info.size > limit:
        raise FormatProblem(info.name, f"{info.size} bytes, over the bound of {limit} for this member")


def tar_samples(tar: tarfile.TarFile, seq_len: int | None = None) -> Iterator[tuple[str, dict[str, tarfile.TarInfo]]]:
    """The samples of an open tar with their members unread (and checked by `check_member`), so that a reader pays
    only for what it reads."""

    def regular(info: tarfile.TarInfo) -> tuple[str, tarfile.TarInfo]:
        check_member(info, seq_len)
        return info.name, info

    return group_samples(map(regular, tar))


def check_shard_name(name: Any) -> str:
    """A manifest's shard name must be a plain file name as the writer makes them: no folder, no `..`, so that
    reading a manifest never opens a file outside its folder (or a device such as /dev/zero)."""
    if not isinstance(name, str) or not SHARD_NAME.match(name):
        raise FormatProblem(repr(name)[:80], "not a shard file name of the form shard-NNNNNN.tar")
    return name


def open_regular(path: str | os.PathLike, *, follow_symlinks: bool = False) -> IO[bytes]:
    """Open a shard for reading only if it is a regular file: a FIFO or device would block or never end, and
    (unless `follow_symlinks`) a symlink could lead out of the folder. Checked on the open descriptor, so the
    file cannot be swapped between the check and the read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # NONBLOCK: opening a FIFO must not hang
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    name = Path(path).name
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if not follow_symlinks and os.path.islink(path):
            raise FormatProblem(name, "is a symbolic link, not a regular file") from None
        raise FormatProblem(name, f"cannot open ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FormatProblem(name, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def sha256_of(f: IO[bytes]) -> str:
    """sha256 of an open file from its current position, in 1 MiB blocks (hashlib.file_digest needs 3.11)."""
    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return h.hexdigest()


def image_suffixes(suffixes: Iterable[str]) -> list[str]:
    """A sample's image members, in placeholder order (by number, in case NNN outgrows three digits)."""
    return sorted((s for s in suffixes if IMAGE.match(s)), key=lambda s: int(s[3 : s.index(".")]))


def load_array(suffix: str, data: bytes | None, max_items: int | None = None,
               want_dtype: type | None = None) -> np.ndarray:
    """Decode one array member (None: missing), of at most `max_items` items. Never unpickles: a shard can come
    from anyone. The header is parsed and its shape checked against the member's real size before anything is
    allocated (np.load would allocate what a hostile header declares, then fail). `want_dtype` is for members outside
    ARRAYS (such as the optional per-image `image_tokens.npy`)."""
    if data is None:
        raise FormatProblem(suffix, "missing")
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as e:  # an .npz archive fails the magic check
        raise FormatProblem(suffix, f"not a plain .npy array ({e})") from None
    if dtype.hasobject:  # its data is a pickle; nothing is ever unpickled
        raise FormatProblem(suffix, f"not a plain .npy array (dtype {dtype} holds Python objects)")
    want = np.dtype(want_dtype or ARRAYS.get(suffix) or IMAGE_ARRAYS[suffix])
    if dtype != want or len(shape) != 1:
        raise FormatProblem(suffix, f"dtype {dtype}{list(shape)}, expected {want}[n]")
    n, held = shape[0], len(data) - f.tell()
    if max_items is not None and n > max_items:
        raise FormatProblem(suffix, f"declares {n} items, more than the {max_items} a sequence can hold")
    if n * dtype.itemsize != held:
        raise FormatProblem(suffix, f"declares {n} items ({n * dtype.itemsize} bytes), the member holds {held}")
    return np.frombuffer(data, dtype=dtype, count=n, offset=f.tell()).copy()  # a writable array, as np.load gave


def load_arrays(members: Mapping[str, bytes], seq_len: int | None = None) -> tuple[np.ndarray, ...]:
    """A sample's four ARRAYS (tokens, weights, classes, cu_seqlens), decoded by `load_array` and bounded by the
    `seq_len` it was compiled for (None: unknown); raises FormatProblem for the first one wrong."""
    return tuple(load_array(s, members.get(s), max_items(seq_len)) for s in ARRAYS)


def image_token_counts(arrays: Mapping[str, np.ndarray], n_images: int, fixed: int | None) -> np.ndarray:
    """Each image's count of positions once expanded, int32 [n_images] in placeholder order: the sample's
    `image_tokens.npy` (in `arrays`, keyed by suffix), or for shards written before it existed (format 1) `fixed`,
    the manifest's `config.image_tokens`. Raises FormatProblem when the member is missing and `fixed` is None (a
    sample without images has no member and needs none), or has the wrong dtype, shape or length, or a negative
    count."""
    a = arrays.get(IMAGE_TOKENS)
    if a is None:
        if fixed is None and n_images:
            raise FormatProblem(IMAGE_TOKENS, f"missing ({n_images} images and no fixed count to fall back on)")
        return np.full(n_images, fixed or 0, dtype=np.int32)
    if a.dtype != IMAGE_ARRAYS[IMAGE_TOKENS] or a.ndim != 1:
        raise FormatProblem(IMAGE_TOKENS, f"dtype {a.dtype}{list(a.shape)}, expected int32[{n_images}]")
    if len(a) != n_images:
        raise FormatProblem(IMAGE_TOKENS, f"{len(a)} counts for {n_images} images")
    if a.min(initial=0) < 0:
        raise FormatProblem(IMAGE_TOKENS, f"negative count {int(a.min())}")
    return a


def image_tile_counts(arrays: Mapping[str, np.ndarray], n_images: int,
                      tiled_rule: str | None = None) -> np.ndarray | None:
    """Each image's count of tiles, int32 [n_images] in placeholder order (the sample's `image_tiles.npy`, in
    `arrays` keyed by suffix), or None when the sample has none. Raises FormatProblem when it is missing although
    the compile's rule `tiled_rule` cuts images into tiles and the sample has images, or has the wrong dtype,
    shape or length."""
    a = arrays.get(IMAGE_TILES)
    if a is None:
        if tiled_rule is not None and n_images:
            raise FormatProblem(IMAGE_TILES, f"missing ({n_images} images, rule {tiled_rule})")
        return None
    if a.dtype != IMAGE_ARRAYS[IMAGE_TILES] or a.ndim != 1:
        raise FormatProblem(IMAGE_TILES, f"dtype {a.dtype}{list(a.shape)}, expected int32[{n_images}]")
    if len(a) != n_images:
        raise FormatProblem(IMAGE_TILES, f"{len(a)} tile counts for {n_images} images")
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


@dataclass(frozen=True, kw_only=True)
class LoadedSample:
    """One sample's members decoded and checked by `load_sample`; its images stay encoded."""

    tokens: np.ndarray  # int32 [n]
    weights: np.ndarray  # float32 [n]
    classes: np.ndarray  # uint8 [n]
    cu_seqlens: np.ndarray  # int32 [d + 1], rising strictly from 0 to n
    meta: Any  # KEY.json as decoded; with `documents`, its list of per-document objects
    per_image: dict[str, np.ndarray]  # the IMAGE_ARRAYS members present, by suffix
    images: tuple[str, ...]  # image member suffixes (imgNNN.EXT), in placeholder order


def load_sample(members: Mapping[str, Any], *, seq_len: int | None = None, vocab_size: int | None = None,
                documents: bool = False) -> LoadedSample:
    """Decode and check what every reader of a sample needs (the loaders; verify and inspect read member by member
    to report more than the first problem, or to skip images): the arrays and KEY.json (`load_arrays`,
    `load_json`), their consistency (`array_problems`, with the documents' token counts when `documents`), and the
    per-image arrays present. Raises FormatProblem for the first thing wrong."""
    tokens, weights, classes, cu = load_arrays(members, seq_len)
    meta = load_json(members.get(JSON), documents=documents)
    doc_tokens = [d.get("tokens") for d in meta] if documents else None
    if problems := array_problems(tokens, weights, classes, cu, doc_tokens, vocab_size):
        raise problems[0]
    per_image = {s: load_array(s, members[s]) for s in IMAGE_ARRAYS if s in members}
    return LoadedSample(tokens=tokens, weights=weights, classes=classes, cu_seqlens=cu, meta=meta,
                        per_image=per_image, images=tuple(image_suffixes(members)))


def array_problems(tokens: np.ndarray, weights: np.ndarray, classes: np.ndarray, cu: np.ndarray,
                   doc_tokens: Sequence[Any] | None = None, vocab_size: int | None = None) -> list[FormatProblem]:
    """What is wrong with a sample's arrays and, given the token counts of KEY.json, its document list; token ids
    must be >= 0 and, given the tokenizer's `vocab_size`, below it (an embedding lookup would fail or read junk).

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
    outside = (tokens < 0) if vocab_size is None else (tokens < 0) | (tokens >= vocab_size)
    if outside.any():
        out.append(FormatProblem("tokens.npy", f"token ids {np.unique(tokens[outside])[:5].tolist()} outside the "
                                 f"vocabulary [0, {vocab_size if vocab_size is not None else 'inf'})"))
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
