"""Deterministic WebDataset shards: one packed sequence per sample (DESIGN.md, 'Shards').

Byte-identical reruns: fixed mtime, uid/gid 0, fixed user/group names, members sorted by TarWriter, npy via
`np.save` (a fixed header), json with sorted keys. A shard is written under a hidden temporary name and renamed
only once it is complete and flushed, so a final name always means a complete shard.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Callable

import numpy as np
import webdataset as wds

from litdata.hashing import file_sha256
from litdata.pack.packer import PackedSequence
from litdata.shards.atomic import AtomicFile
from litdata.shards.manifest import ShardEntry
from litdata.shards.schema import (
    ARRAYS,
    CLASSES,
    CU_SEQLENS,
    IMAGE_ARRAYS,
    IMAGE_MEMBER,
    IMAGE_TILES,
    IMAGE_TOKENS,
    JSON,
    SHARD_PATTERN,
    TOKENS,
    WEIGHTS,
)

TAR_MTIME = 0.0
_TAR_OVERHEAD = 1024  # header block + worst-case padding per member, for the size bound


class _HashingFile:
    """A write-only file that hashes and counts what passes through, so no second read of the shard is needed."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.n = f, hashlib.sha256(), 0
        self.discard = False  # set on abort, so closing the tar stream writes nowhere

    def write(self, b) -> int:
        if self.discard:
            return len(b)
        self.sha.update(b)
        self.n += len(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def sample_members(seq: PackedSequence) -> dict[str, bytes]:
    docs = seq.docs
    cu = np.zeros(len(docs) + 1, dtype=ARRAYS[CU_SEQLENS])
    np.cumsum([d.n_tokens for d in docs], out=cu[1:])
    members = {
        TOKENS: _npy(np.concatenate([d.tokens for d in docs]).astype(ARRAYS[TOKENS], copy=False)),
        WEIGHTS: _npy(np.concatenate([d.weights for d in docs]).astype(ARRAYS[WEIGHTS], copy=False)),
        CLASSES: _npy(np.concatenate([d.classes for d in docs]).astype(ARRAYS[CLASSES], copy=False)),
        CU_SEQLENS: _npy(cu),
        JSON: json.dumps({"documents": [d.meta for d in docs]}, sort_keys=True, separators=(",", ":")).encode(),
    }
    n = 0
    for d in docs:
        for img in d.images:
            members[IMAGE_MEMBER.format(n, img.ext)] = img.read()
            n += 1
    if n:
        members.update(_image_count_members(docs))
    return members


def _image_count_members(docs: tuple) -> dict[str, bytes]:
    """KEY.image_tokens.npy (each image's expanded count, placeholder order) and, for tiling rules,
    KEY.image_tiles.npy (DESIGN.md, 'Shards')."""
    for d in docs:
        if len(d.image_counts) != len(d.images) or (d.image_tiles and len(d.image_tiles) != len(d.images)):
            raise ValueError(f"{d.provenance.describe()}: {len(d.images)} images but {len(d.image_counts)} counts")
    counts = [c for d in docs for c in d.image_counts]
    out = {IMAGE_TOKENS: _npy(np.array(counts, dtype=IMAGE_ARRAYS[IMAGE_TOKENS]))}
    if any(d.image_tiles for d in docs):
        out[IMAGE_TILES] = _npy(np.array([t for d in docs for t in d.image_tiles], dtype=IMAGE_ARRAYS[IMAGE_TILES]))
    return out


class ShardWriter:
    def __init__(self, out_dir: Path, *, max_bytes: int, max_sequences: int,
                 claim: Callable[[str], None]) -> None:
        self.out_dir = out_dir
        self.claim = claim  # records a shard name as this run's before its file is created (OutputWriter.claim)
        self.max_bytes, self.max_sequences = max_bytes, max_sequences
        self.shards: list[ShardEntry] = []
        self._seq_index = 0
        self._open_shard()

    def _open_shard(self) -> None:
        self._name = SHARD_PATTERN.format(len(self.shards))
        self.claim(self._name)
        self._target = AtomicFile(self.out_dir / self._name)
        self._target.discard()  # a killed run's leftover
        self._file = open(self._target.temp, "wb")
        self._hash = _HashingFile(self._file)
        self._tar = wds.TarWriter(self._hash, encoder=False, mtime=TAR_MTIME, user="litdata", group="litdata",
                                  mode=0o444)
        self._count = self._docs = self._tokens = self._bytes = 0

    def write(self, seq: PackedSequence) -> None:
        members = sample_members(seq)
        size = sum(len(v) + _TAR_OVERHEAD for v in members.values())
        if self._count and (self._count >= self.max_sequences or self._bytes + size > self.max_bytes):
            self._finish()
            self._open_shard()
        members["__key__"] = f"{self._seq_index:09d}"  # dot-free, sortable, unique across shards
        self._tar.write(members)
        self._seq_index += 1
        self._count += 1
        self._docs += len(seq.docs)
        self._tokens += sum(d.n_tokens for d in seq.docs)
        self._bytes += size

    def _finish(self) -> None:
        self._tar.close()  # writes the end-of-archive blocks through the hashing file
        self._file.close()
        final, sha = self._target.path, self._hash.sha.hexdigest()
        if final.is_file() and file_sha256(final) == sha:
            self._target.discard()  # a resumed run: the shard from before the crash is verified complete; keep it
        else:
            self._target.commit()
        self.shards.append(ShardEntry(name=self._name, sha256=sha, bytes=self._hash.n,
                                     sequences=self._count, documents=self._docs, tokens=self._tokens))

    def close(self) -> list[ShardEntry]:
        if self._count:
            self._finish()
        else:
            self._tar.close()
            self._file.close()
            self._target.discard()
        return self.shards

    def abort(self) -> None:
        """Leave no partial shard behind (e.g. on a full disk)."""
        self._hash.discard = True
        try:
            self._tar.close()
            self._file.close()
        finally:
            self._target.discard()
