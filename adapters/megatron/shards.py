"""Finding and safely reading litdata shards (DESIGN.md, 'Shards' and 'manifest.json').

Tars are read with webdataset's tar iterator; samples are grouped, decoded (nothing is ever unpickled) and checked
by `litdata.shard_format`, as in `litdata verify` and `litdata inspect`. Every problem with a shard raises
`CorruptShardError` naming the shard and the member, so that the caller can fail or skip that shard.

Checks, cheapest first:
- the file exists and its size equals the manifest's `bytes` (when a manifest is known);
- its sha256 equals the manifest's (`verify_checksums`; the hash of each file is checked once per process);
- the tar ends with an end-of-archive marker (a tar cut at a member boundary otherwise reads as shorter);
- every sample has the four `.npy` members and its `.json`, with the DESIGN dtypes, shapes and values;
- the number of sequences read equals the manifest's `sequences`.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from litdata import FORMAT_NAME, shard_format
from litdata.classes import TokenClass
from litdata.hashing import file_sha256

MANIFEST = "manifest.json"


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
    # KEY.image_tokens.npy / KEY.image_tiles.npy as stored (format 2); None where absent (format 1, no images)
    image_counts: np.ndarray | None = None
    image_tiles: np.ndarray | None = None


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
            for key, members in shard_format.group_samples((item["fname"], item["data"]) for item in files):
                yield decode_sample(info.name, key, members, image_token_id=image_token_id)
                count += 1
        except CorruptShardError:
            raise
        except shard_format.FormatProblem as exn:  # from grouping: it names the whole member
            raise CorruptShardError(info.name, exn.member, exn.reason) from None
        except (tarfile.TarError, OSError, EOFError, ValueError) as exn:  # cut data: name the member being read
            raise CorruptShardError(info.name, current[0], f"{type(exn).__name__}: {exn}") from None
    if info.sequences is not None and count != info.sequences:
        raise CorruptShardError(info.name, "<tar>", f"{count} sequences, manifest says {info.sequences}")


def decode_sample(
    shard: str, key: str, members: Mapping[str, bytes], *, image_token_id: int | None = None
) -> RawSequence:
    try:
        tokens, weights, classes, cu = (shard_format.load_array(s, members.get(s)) for s in shard_format.ARRAYS)
        meta = shard_format.load_json(members.get("json"))
        if problems := shard_format.array_problems(tokens, weights, classes, cu):
            raise problems[0]
        per_image = {s: shard_format.load_array(s, members[s]) for s in shard_format.IMAGE_ARRAYS if s in members}
    except shard_format.FormatProblem as exn:
        raise CorruptShardError(shard, f"{key}.{exn.member}", exn.reason) from None
    images = shard_format.image_suffixes(members)
    is_placeholder = tokens == image_token_id if image_token_id is not None else classes == TokenClass.IMAGE
    doc_of = np.searchsorted(cu, np.flatnonzero(is_placeholder), side="right") - 1
    images_per_doc = np.bincount(doc_of, minlength=cu.shape[0] - 1).astype(np.int32)
    if images and len(images) != int(images_per_doc.sum()):
        raise CorruptShardError(
            shard, f"{key}.{images[-1]}", f"{len(images)} images for {int(images_per_doc.sum())} placeholders"
        )
    return RawSequence(
        shard=shard,
        key=key,
        tokens=tokens,
        weights=weights,
        classes=classes,
        cu_seqlens=cu,
        images_per_doc=images_per_doc,
        image_members=tuple(f"{key}.{m}" for m in images),
        image_bytes=tuple(members[m] for m in images),
        meta=meta,
        image_counts=per_image.get("image_tokens.npy"),
        image_tiles=per_image.get("image_tiles.npy"),
    )
