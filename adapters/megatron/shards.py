"""Finding and safely reading litdata shards (DESIGN.md, 'Shards' and 'manifest.json').

Tars are streamed with `tarfile`; members are checked (regular, not sparse, within the size bound of their kind)
before they are read, and samples are grouped, decoded (nothing is ever unpickled, no array larger than its member
is allocated) and checked by `litdata.shards.reader`, as in `litdata verify` and `litdata inspect`. Every problem
with a shard raises `CorruptShardError` naming the shard and the member, so that the caller can fail or skip that
shard. A manifest's shard names must be plain file names (`shard-NNNNNN.tar`), or the manifest is refused.

Checks, cheapest first:
- the file exists, is a regular file (a symlink only where the caller named the path itself) and its size equals
  the manifest's `bytes` (when a manifest is known);
- its sha256 equals the manifest's (`verify_checksums`; the hash of each file is checked once per process);
- the tar ends with an end-of-archive marker (a tar cut at a member boundary otherwise reads as shorter);
- every sample has the four `.npy` members and its `.json`, with the DESIGN dtypes, shapes and values;
- the number of sequences read equals the manifest's `sequences`.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from litdata.classes import TokenClass
from litdata.shards import reader as shard_reader
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_sections import ShardEntry
from litdata.shards.schema import IMAGE_TILES, IMAGE_TOKENS, MANIFEST

if TYPE_CHECKING:
    from litdata.images.tokens import ImageTokenRule


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
    follow_symlinks: bool = True  # False for names read from a manifest: they must be files inside its folder


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardSet:
    """The shards to read, in manifest (or given) order, and the compiler's effective config."""

    shards: tuple[ShardInfo, ...]
    manifest: Manifest | None = None
    manifest_path: str | None = None
    manifest_sha256: str | None = None  # identifies the dataset in a loader state

    @property
    def dataset_id(self) -> str:
        """The manifest's sha256, or without a manifest the hash of the shard names in order."""
        if self.manifest_sha256:
            return self.manifest_sha256
        return "names:" + hashlib.sha256("\n".join(s.name for s in self.shards).encode()).hexdigest()

    @property
    def config(self) -> Mapping[str, Any]:
        """The compile's settings as its manifest records them ({} without a manifest)."""
        return self.manifest.config if self.manifest is not None else {}

    @property
    def vocab_size(self) -> int | None:
        return self.manifest.vocab_size if self.manifest is not None else None

    @property
    def pad_id(self) -> int:
        return self.manifest.pad_id if self.manifest is not None else 0

    @property
    def image_tokens(self) -> int:
        return (self.manifest.image_tokens if self.manifest is not None else None) or 1

    @property
    def image_token_id(self) -> int | None:
        return self.manifest.image_token_id if self.manifest is not None else None

    @property
    def image_token_rule(self) -> str | None:
        """None without a manifest or in format 1; then samples carry no per-image counts."""
        return self.manifest.image_token_rule if self.manifest is not None else None

    @property
    def seq_len(self) -> int | None:
        return self.manifest.seq_len if self.manifest is not None else None

    def image_rule(self) -> ImageTokenRule | None:
        """The compile's image token rule (None without a manifest)."""
        return self.manifest.image_rule() if self.manifest is not None else None


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardSample:
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


def _manifest_set(manifest_path: Path, shards: tuple[ShardInfo, ...], manifest: Manifest) -> ShardSet:
    return ShardSet(shards=shards, manifest=manifest, manifest_path=str(manifest_path),
                    manifest_sha256=hashlib.sha256(manifest_path.read_bytes()).hexdigest())


def resolve_shards(data: str | os.PathLike | Sequence[str | os.PathLike]) -> ShardSet:
    """`data` is a compiled output folder, one tar, a brace pattern such as `d/shard-{000000..000003}.tar`,
    or a list of tar paths. Tar paths that sit next to a manifest.json are matched to its entries."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        folder = Path(data)
        if (folder / MANIFEST).is_file():
            manifest = Manifest.read(folder / MANIFEST)
            shards = tuple(_info(folder / s.name, s, follow_symlinks=False) for s in manifest.shards)
            return _manifest_set(folder / MANIFEST, shards, manifest)
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
        manifest = Manifest.read(manifest_path)
        by_name = {s.name: s for s in manifest.shards}
        shards = tuple(_info(Path(p), by_name.get(Path(p).name)) for p in paths)
        return _manifest_set(manifest_path, shards, manifest)
    return ShardSet(shards=tuple(_info(Path(p), None) for p in paths))


def _info(path: Path, entry: ShardEntry | None, *, follow_symlinks: bool = True) -> ShardInfo:
    """`entry`: what the manifest lists for this file (None: not listed, or no manifest)."""
    return ShardInfo(
        path=str(path),
        name=path.name,
        sha256=entry.sha256 if entry is not None else None,
        bytes=entry.bytes if entry is not None else None,
        sequences=entry.sequences if entry is not None else None,
        follow_symlinks=follow_symlinks,
    )


def _open(info: ShardInfo) -> IO[bytes]:
    try:
        return shard_reader.open_regular(info.path, follow_symlinks=info.follow_symlinks)
    except shard_reader.FormatProblem as p:
        raise CorruptShardError(info.name, "<file>", p.reason) from None


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) whose sha256 matched, per process


def check_file(info: ShardInfo, *, verify_checksums: bool) -> None:
    """Cheap whole-file checks before reading: a regular file, size, sha256, end-of-archive marker."""
    with _open(info) as f:
        st = os.fstat(f.fileno())
        if info.bytes is not None and st.st_size != info.bytes:
            raise CorruptShardError(info.name, "<file>", f"{st.st_size} bytes, manifest says {info.bytes}")
        if verify_checksums and info.sha256 and (info.path, st.st_size, st.st_mtime_ns) not in _VERIFIED:
            if shard_reader.sha256_of(f) != info.sha256:  # the descriptor checked above, not the path again
                raise CorruptShardError(info.name, "<file>", "sha256 differs from the manifest")
            _VERIFIED.add((info.path, st.st_size, st.st_mtime_ns))
        # A tar cut exactly between members still parses; its end-of-archive marker (two zero blocks) is gone.
        if st.st_size < 1024 or st.st_size % 512:
            raise CorruptShardError(info.name, "<end-of-archive>", f"truncated tar ({st.st_size} bytes)")
        f.seek(st.st_size - 1024)
        if any(f.read(1024)):
            raise CorruptShardError(info.name, "<end-of-archive>", "truncated tar (no end-of-archive marker)")


def _members(f: IO[bytes], current: list[str], seq_len: int | None) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each member in tar order, each checked before its bytes are read."""
    stream = tarfile.open(fileobj=f, mode="r|")
    for info in stream:
        current[0] = info.name
        shard_reader.check_member(info, seq_len)
        data = stream.extractfile(info).read()
        stream.members = []  # a stream keeps every header it has read otherwise
        yield info.name, data


def iter_shard(
    info: ShardInfo,
    *,
    verify_checksums: bool = True,
    image_token_id: int | None = None,
    seq_len: int | None = None,
    vocab_size: int | None = None,
) -> Iterator[ShardSample]:
    """Yield the checked sequences of one shard (compiled for `seq_len` with a tokenizer of `vocab_size`, where
    known); raise CorruptShardError at the first problem."""
    check_file(info, verify_checksums=verify_checksums)
    current = ["<tar header>"]
    count = 0
    with _open(info) as f:
        try:
            for key, members in shard_reader.group_samples(_members(f, current, seq_len)):
                yield decode_sample(info.name, key, members, image_token_id=image_token_id, seq_len=seq_len,
                                    vocab_size=vocab_size)
                count += 1
        except CorruptShardError:
            raise
        except shard_reader.FormatProblem as exn:  # from grouping: it names the whole member
            raise CorruptShardError(info.name, exn.member, exn.reason) from None
        except (tarfile.TarError, OSError, EOFError, ValueError) as exn:  # cut data: name the member being read
            raise CorruptShardError(info.name, current[0], f"{type(exn).__name__}: {exn}") from None
    if info.sequences is not None and count != info.sequences:
        raise CorruptShardError(info.name, "<tar>", f"{count} sequences, manifest says {info.sequences}")


def decode_sample(
    shard: str,
    key: str,
    members: Mapping[str, bytes],
    *,
    image_token_id: int | None = None,
    seq_len: int | None = None,
    vocab_size: int | None = None,
) -> ShardSample:
    try:
        sample = shard_reader.load_sample(members, seq_len=seq_len, vocab_size=vocab_size)
    except shard_reader.FormatProblem as exn:
        raise CorruptShardError(shard, f"{key}.{exn.member}", exn.reason) from None
    tokens, classes, cu, images = sample.tokens, sample.classes, sample.cu_seqlens, sample.images
    is_placeholder = tokens == image_token_id if image_token_id is not None else classes == TokenClass.IMAGE
    doc_of = np.searchsorted(cu, np.flatnonzero(is_placeholder), side="right") - 1
    images_per_doc = np.bincount(doc_of, minlength=cu.shape[0] - 1).astype(np.int32)
    if images and len(images) != int(images_per_doc.sum()):
        raise CorruptShardError(
            shard, f"{key}.{images[-1]}", f"{len(images)} images for {int(images_per_doc.sum())} placeholders"
        )
    return ShardSample(
        shard=shard,
        key=key,
        tokens=tokens,
        weights=sample.weights,
        classes=classes,
        cu_seqlens=cu,
        images_per_doc=images_per_doc,
        image_members=tuple(f"{key}.{m}" for m in images),
        image_bytes=tuple(members[m] for m in images),
        meta=sample.meta,
        image_counts=sample.per_image.get(IMAGE_TOKENS),
        image_tiles=sample.per_image.get(IMAGE_TILES),
    )
