"""Deterministic WebDataset shards: one packed sequence per sample (DESIGN.md, 'Shards').

Byte-identical reruns: fixed mtime, uid/gid 0, fixed user/group names, members sorted by TarWriter, npy via
`np.save` (a fixed header), json with sorted keys. A shard is written under a hidden temporary name and renamed
only once it is complete and flushed, so a final name always means a complete shard.

Where one shard ends and the next begins is decided by `ShardPlan` from each sample's exact size
(`sample_size`), which needs no image bytes: so the Ray engine can cut the runs on its driver and write the
shards in parallel (`write_shard`), with the boundaries and bytes of the sequential `ShardWriter`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
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
        JSON: _json_member(docs),
    }
    n = 0
    for d in docs:
        for img in d.images:
            members[IMAGE_MEMBER.format(n, img.ext)] = img.read()
            n += 1
    if n:
        members.update(_image_count_members(docs))
    return members


def _json_member(docs: Sequence) -> bytes:
    return json.dumps({"documents": [d.meta for d in docs]}, sort_keys=True, separators=(",", ":")).encode()


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


def _npy_size(dtype, n: int) -> int:
    """len(_npy(a)) for a 1-D array `a` of `n` items of `dtype`: np.save's header (version 1.0, padded to a
    multiple of 64 bytes; its length depends only on the dtype and the digits of n) plus the data."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.tell() + n * np.dtype(dtype).itemsize


def _image_size(img) -> int:
    return len(img.data) if img.data is not None else img.size  # a file's size as checked by the encode pass


def sample_size(seq: PackedSequence) -> int:
    """What the sample of `seq` counts against --max-shard-bytes: `len(member) + _TAR_OVERHEAD` summed over
    `sample_members(seq)`, computed from lengths alone, without reading an image (tests hold the two equal)."""
    docs = seq.docs
    n_tokens = sum(len(d.tokens) for d in docs)
    size = (_npy_size(ARRAYS[TOKENS], n_tokens) + _npy_size(ARRAYS[WEIGHTS], sum(len(d.weights) for d in docs))
            + _npy_size(ARRAYS[CLASSES], sum(len(d.classes) for d in docs))
            + _npy_size(ARRAYS[CU_SEQLENS], len(docs) + 1) + len(_json_member(docs)))
    images = [img for d in docs for img in d.images]
    size += sum(_image_size(img) for img in images)
    members = 5 + len(images)
    if images:
        size += _npy_size(IMAGE_ARRAYS[IMAGE_TOKENS], sum(len(d.image_counts) for d in docs))
        members += 1
        if any(d.image_tiles for d in docs):
            size += _npy_size(IMAGE_ARRAYS[IMAGE_TILES], sum(len(d.image_tiles) for d in docs))
            members += 1
    return size + members * _TAR_OVERHEAD


class ShardPlan:
    """The rule that ends a shard, in one place: a shard takes samples until the next one would make it hold
    more than `max_sequences` samples or more than `max_bytes` (by `sample_size`); a shard always takes at
    least one sample, however large."""

    def __init__(self, *, max_bytes: int, max_sequences: int) -> None:
        self.max_bytes, self.max_sequences = max_bytes, max_sequences
        self._count = self._bytes = 0

    def add(self, size: int) -> bool:
        """Place the next sample, of `size`: True when it starts a new shard (the one before is complete)."""
        new = bool(self._count) and (self._count >= self.max_sequences or self._bytes + size > self.max_bytes)
        if new:
            self._count = self._bytes = 0
        self._count += 1
        self._bytes += size
        return new


def plan_shards(sequences: Iterable[PackedSequence], *, max_bytes: int, max_sequences: int) -> list[range]:
    """The runs of sequence indices that the shards hold, in order: shard i holds sequences runs[i]."""
    plan = ShardPlan(max_bytes=max_bytes, max_sequences=max_sequences)
    runs: list[range] = []
    for i, seq in enumerate(sequences):
        if plan.add(sample_size(seq)) or not runs:
            runs.append(range(i, i + 1))
        else:
            runs[-1] = range(runs[-1].start, i + 1)
    return runs


class _ShardFile:
    """One shard being written: under its temporary name, hashed and counted as it goes."""

    def __init__(self, out_dir: Path, index: int) -> None:
        self.name = SHARD_PATTERN.format(index)
        self._target = AtomicFile(out_dir / self.name)
        self._target.discard()  # a killed run's leftover
        self._file = open(self._target.temp, "wb")
        self._hash = _HashingFile(self._file)
        self._tar = wds.TarWriter(self._hash, encoder=False, mtime=TAR_MTIME, user="litdata", group="litdata",
                                  mode=0o444)
        self.count = self._docs = self._tokens = 0

    def write(self, key: int, seq: PackedSequence) -> None:
        members = sample_members(seq)
        members["__key__"] = f"{key:09d}"  # dot-free, sortable, unique across shards
        self._tar.write(members)
        self.count += 1
        self._docs += len(seq.docs)
        self._tokens += sum(d.n_tokens for d in seq.docs)

    def finish(self) -> ShardEntry:
        self._tar.close()  # writes the end-of-archive blocks through the hashing file
        self._file.close()
        final, sha = self._target.path, self._hash.sha.hexdigest()
        if final.is_file() and file_sha256(final) == sha:
            self._target.discard()  # a resumed run: the shard from before the crash is verified complete; keep it
        else:
            self._target.commit()
        return ShardEntry(name=self.name, sha256=sha, bytes=self._hash.n, sequences=self.count,
                          documents=self._docs, tokens=self._tokens)

    def abort(self) -> None:
        """Leave no partial shard behind (e.g. on a full disk)."""
        self._hash.discard = True
        try:
            self._tar.close()
            self._file.close()
        finally:
            self._target.discard()


def write_shard(out_dir: Path, index: int, first_key: int, seqs: Sequence[PackedSequence]) -> ShardEntry:
    """Shard number `index`, holding `seqs` (one run of `plan_shards`) keyed from `first_key`, written whole:
    the bytes `ShardWriter` writes for the same run. Its name must already be claimed in the output folder."""
    shard = _ShardFile(Path(out_dir), index)
    try:
        for i, seq in enumerate(seqs):
            shard.write(first_key + i, seq)
        return shard.finish()
    except BaseException:
        shard.abort()
        raise


class ShardWriter:
    """Writes the shards one after another as the sequences come, cut by `ShardPlan`."""

    def __init__(self, out_dir: Path, *, max_bytes: int, max_sequences: int,
                 claim: Callable[[str], None]) -> None:
        self.out_dir = out_dir
        self.claim = claim  # records a shard name as this run's before its file is created (OutputWriter.claim)
        self._plan = ShardPlan(max_bytes=max_bytes, max_sequences=max_sequences)
        self.shards: list[ShardEntry] = []
        self._seq_index = 0
        self._open_shard()

    def _open_shard(self) -> None:
        self.claim(SHARD_PATTERN.format(len(self.shards)))
        self._shard = _ShardFile(self.out_dir, len(self.shards))

    def write(self, seq: PackedSequence) -> None:
        if self._plan.add(sample_size(seq)):
            self.shards.append(self._shard.finish())
            self._open_shard()
        self._shard.write(self._seq_index, seq)
        self._seq_index += 1

    def close(self) -> list[ShardEntry]:
        if self._shard.count:
            self.shards.append(self._shard.finish())
        else:
            self._shard.abort()
        return self.shards

    def abort(self) -> None:
        """Leave no partial shard behind (e.g. on a full disk)."""
        self._shard.abort()
