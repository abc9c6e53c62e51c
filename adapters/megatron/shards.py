"""Finding and safely reading litdata shards (DESIGN.md, 'Shards' and 'manifest.json').

Reading is built on webdataset's tar iterator and key grouping; every `.npy` member is decoded with
`numpy.load(..., allow_pickle=False)` and nothing is ever unpickled. Every problem with a shard raises
`CorruptShardError` naming the shard and the member, so that the caller can fail or skip that shard.

Checks, cheapest first:
- the file exists and its size equals the manifest's `bytes` (when a manifest is known);
- its sha256 equals the manifest's (`verify_checksums`; the hash of each file is checked once per process);
- the tar ends with an end-of-archive marker (a tar cut at a member boundary otherwise reads as shorter);
- every sample has the four `.npy` members and its `.json`, with the DESIGN dtypes and consistent shapes;
- the number of sequences read equals the manifest's `sequences`.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from litdata import FORMAT_NAME
from litdata.classes import TokenClass
from litdata.hashing import file_sha256

MANIFEST = "manifest.json"
_NPY = {"tokens.npy": np.int32, "weights.npy": np.float32, "classes.npy": np.uint8, "cu_seqlens.npy": np.int32}
_IMAGE_MEMBER = re.compile(r"^img(\d{3,})\.([a-z0-9]+)$")


class CorruptShardError(RuntimeError):
    """A shard (or one member of it) cannot be read as a DESIGN-format litdata shard."""

    def __init__(self, shard: str, member: str, reason: str) -> None:
        super().__init__(f"corrupt shard {shard}: member {member}: {reason}")
        self.shard = shard
        self.member = member
        self.reason = reason


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardInfo:
    """One shard file and what the manifest says about it (None where there is no manifest)."""

    path: str
    name: str
    sha256: str | None = None
    bytes: int | None = None
    sequences: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardSet:
    """The shards to read, in manifest (or given) order, and the compiler's effective config."""

    shards: tuple[ShardInfo, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    manifest_path: str | None = None

    @property
    def pad_id(self) -> int:
        return int(self.config.get("pad_id") or 0)

    @property
    def image_tokens(self) -> int:
        return int(self.config.get("image_tokens") or 1)

    @property
    def seq_len(self) -> int | None:
        value = self.config.get("seq_len")
        return int(value) if value is not None else None


@dataclass(frozen=True, kw_only=True, slots=True)
class RawSequence:
    """One packed sequence with its arrays decoded and checked; image bytes are decoded later, if at all."""

    shard: str
    key: str
    tokens: np.ndarray  # int32 [n]
    weights: np.ndarray  # float32 [n]
    classes: np.ndarray  # uint8 [n]
    cu_seqlens: np.ndarray  # int32 [d+1], 0 .. n
    images_per_doc: np.ndarray  # int32 [d]
    image_members: tuple[str, ...]  # member names, in placeholder order
    image_bytes: tuple[bytes, ...]
    meta: Any


def load_manifest(path: str | os.PathLike) -> dict:
    with open(path, "rb") as f:
        manifest = json.load(f)
    fmt = manifest.get("format", {}) if isinstance(manifest, dict) else {}
    if fmt.get("name") != FORMAT_NAME:
        raise ValueError(f"{path}: not a {FORMAT_NAME} manifest (format {fmt!r})")
    return manifest


def resolve_shards(data: str | os.PathLike | Sequence[str | os.PathLike]) -> ShardSet:
    """`data` is a compiled output folder, one tar, a brace pattern such as `d/shard-{000000..000003}.tar`,
    or a list of tar paths. Tar paths that sit next to a manifest.json are matched to its entries."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        folder = Path(data)
        if (folder / MANIFEST).is_file():
            manifest = load_manifest(folder / MANIFEST)
            shards = tuple(_info(folder / s["name"], s) for s in manifest.get("shards", []))
            return ShardSet(shards=shards, config=manifest.get("config", {}), manifest_path=str(folder / MANIFEST))
        paths = sorted(str(p) for p in folder.glob("*.tar"))
    elif isinstance(data, (str, os.PathLike)):
        import braceexpand

        paths = list(braceexpand.braceexpand(str(data)))
    else:
        paths = [str(p) for p in data]
    if not paths:
        raise ValueError(f"no shards found in {data!r}")
    return _match_manifest(paths)


def _match_manifest(paths: list[str]) -> ShardSet:
    parents = {Path(p).resolve().parent for p in paths}
    if len(parents) == 1 and (manifest_path := next(iter(parents)) / MANIFEST).is_file():
        manifest = load_manifest(manifest_path)
        by_name = {s["name"]: s for s in manifest.get("shards", [])}
        shards = tuple(_info(Path(p), by_name.get(Path(p).name, {})) for p in paths)
        return ShardSet(shards=shards, config=manifest.get("config", {}), manifest_path=str(manifest_path))
    return ShardSet(shards=tuple(_info(Path(p), {}) for p in paths))


def _info(path: Path, entry: Mapping[str, Any]) -> ShardInfo:
    return ShardInfo(
        path=str(path),
        name=path.name,
        sha256=entry.get("sha256"),
        bytes=entry.get("bytes"),
        sequences=entry.get("sequences"),
    )


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) whose sha256 matched, per process


def check_file(info: ShardInfo, *, verify_checksums: bool) -> None:
    """Cheap whole-file checks before reading: existence, size, sha256, end-of-archive marker."""
    try:
        st = os.stat(info.path)
    except OSError as exn:
        raise CorruptShardError(info.name, "<file>", f"cannot open: {exn.strerror or exn}") from None
    if info.bytes is not None and st.st_size != info.bytes:
        raise CorruptShardError(info.name, "<file>", f"{st.st_size} bytes, manifest says {info.bytes}")
    if verify_checksums and info.sha256 and (info.path, st.st_size, st.st_mtime_ns) not in _VERIFIED:
        if file_sha256(info.path) != info.sha256:
            raise CorruptShardError(info.name, "<file>", "sha256 differs from the manifest")
        _VERIFIED.add((info.path, st.st_size, st.st_mtime_ns))
    # A tar cut exactly between members still parses; its end-of-archive marker (two zero blocks) is gone.
    with open(info.path, "rb") as f:
        if st.st_size < 1024 or st.st_size % 512:
            raise CorruptShardError(info.name, "<end-of-archive>", f"truncated tar ({st.st_size} bytes)")
        f.seek(st.st_size - 1024)
        if any(f.read(1024)):
            raise CorruptShardError(info.name, "<end-of-archive>", "truncated tar (no end-of-archive marker)")


def iter_shard(
    info: ShardInfo, *, verify_checksums: bool = True, image_token_id: int | None = None
) -> Iterator[RawSequence]:
    """Yield the checked sequences of one shard; raise CorruptShardError at the first problem."""
    check_file(info, verify_checksums=verify_checksums)
    current = ["<tar header>"]

    def note(fname: str) -> bool:  # called by webdataset just before it reads a member's bytes
        current[0] = fname
        return True

    count = 0
    with open(info.path, "rb") as f:
        try:
            files = wds.tariterators.tar_file_iterator(f, select_files=note)
            samples = wds.tariterators.group_by_keys(_with_url(files, info.path))
            for sample in samples:
                yield decode_sample(info.name, sample, image_token_id=image_token_id)
                count += 1
        except CorruptShardError:
            raise
        except (tarfile.TarError, OSError, EOFError, ValueError) as exn:  # cut data, duplicate members: name the member
            raise CorruptShardError(info.name, current[0], f"{type(exn).__name__}: {exn}") from None
    if info.sequences is not None and count != info.sequences:
        raise CorruptShardError(info.name, "<tar>", f"{count} sequences, manifest says {info.sequences}")


def _with_url(files: Iterator[dict], url: str) -> Iterator[dict]:
    for item in files:
        item["__url__"] = url
        yield item


def decode_sample(shard: str, sample: Mapping[str, Any], *, image_token_id: int | None = None) -> RawSequence:
    key = sample["__key__"]
    arrays = {}
    for suffix, dtype in _NPY.items():
        member = f"{key}.{suffix}"
        if suffix not in sample:
            raise CorruptShardError(shard, member, "missing")
        try:
            arr = np.load(io.BytesIO(sample[suffix]), allow_pickle=False)
        except (ValueError, OSError, EOFError, TypeError) as exn:  # object arrays are refused with ValueError
            raise CorruptShardError(shard, member, f"not a plain .npy array ({exn})") from None
        if arr.dtype != dtype or arr.ndim != 1:
            raise CorruptShardError(shard, member, f"expected {np.dtype(dtype)}[n], got {arr.dtype}{list(arr.shape)}")
        arrays[suffix] = arr
    if "json" not in sample:
        raise CorruptShardError(shard, f"{key}.json", "missing")
    try:
        meta = json.loads(sample["json"])
    except ValueError as exn:
        raise CorruptShardError(shard, f"{key}.json", f"invalid JSON ({exn})") from None
    tokens, weights, classes, cu = (arrays[s] for s in _NPY)
    n = tokens.shape[0]
    for suffix in ("weights.npy", "classes.npy"):
        if arrays[suffix].shape[0] != n:
            raise CorruptShardError(shard, f"{key}.{suffix}", f"length {arrays[suffix].shape[0]}, tokens has {n}")
    if cu.shape[0] < 2 or cu[0] != 0 or cu[-1] != n or np.any(np.diff(cu) <= 0):
        raise CorruptShardError(shard, f"{key}.cu_seqlens.npy", f"not increasing offsets from 0 to {n}: {cu[:8]}...")
    if classes.size and int(classes.max()) >= len(TokenClass):
        raise CorruptShardError(shard, f"{key}.classes.npy", f"unknown class id {int(classes.max())}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise CorruptShardError(shard, f"{key}.weights.npy", "weights must be finite and >= 0")
    members = sorted((m for m in sample if _IMAGE_MEMBER.match(m)), key=lambda m: int(_IMAGE_MEMBER.match(m)[1]))
    is_placeholder = tokens == image_token_id if image_token_id is not None else classes == TokenClass.IMAGE
    doc_of = np.searchsorted(cu, np.flatnonzero(is_placeholder), side="right") - 1
    images_per_doc = np.bincount(doc_of, minlength=cu.shape[0] - 1).astype(np.int32)
    if members and len(members) != int(images_per_doc.sum()):
        raise CorruptShardError(
            shard, f"{key}.{members[-1]}", f"{len(members)} images for {int(images_per_doc.sum())} placeholders"
        )
    return RawSequence(
        shard=shard,
        key=key,
        tokens=tokens,
        weights=weights,
        classes=classes,
        cu_seqlens=cu,
        images_per_doc=images_per_doc,
        image_members=tuple(f"{key}.{m}" for m in members),
        image_bytes=tuple(sample[m] for m in members),
        meta=meta,
    )
