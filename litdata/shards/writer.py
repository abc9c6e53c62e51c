"""Deterministic WebDataset shards: one packed sequence per sample (DESIGN.md, 'Shards').

Byte-identical reruns: fixed mtime, uid/gid 0, fixed user/group names, members sorted (the bytes of
webdataset's TarWriter, built by `shards/tar.py`), npy as `np.save` writes it (a fixed header), json with sorted
keys. A shard is written under a hidden temporary name and renamed only once it is complete, so a final name
always means a complete shard.

Each sample's members are encoded once (`build_sample`), and measured for the size rule before they are written.
Where one shard ends and the next begins is decided by `ShardPlan` from those sizes, which need no image bytes:
so the Ray engine can cut the runs on its driver and write the shards in parallel (`write_shard`), with the
boundaries and bytes of the sequential `ShardWriter`. Both return each shard's layout (where every sample and
member lies), from which the energon index is built without reading the shards back.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litdata.hashing import file_sha256
from litdata.pack.packer import PackedSequence
from litdata.records.document import ImageBlob
from litdata.shards.atomic import AtomicFile
from litdata.shards.energon import ShardLayout
from litdata.shards.manifest_sections import ShardEntry
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
from litdata.shards.tar import MemberHeaders, end_of_archive, padding

TAR_MTIME = 0.0
_TAR_OVERHEAD = 1024  # header block + worst-case padding per member, for the size bound
_HEADERS = MemberHeaders(mtime=TAR_MTIME, mode=0o444, user="litdata", group="litdata")


class _HashingFile:
    """A write-only file that hashes and counts what passes through, so no second read of the shard is needed."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.n = f, hashlib.sha256(), 0

    def write(self, b) -> int:
        self.sha.update(b)
        self.n += len(b)
        return self.f.write(b)


_NPY_HEADERS: dict[tuple[str, int], tuple[bytes, bytes]] = {}


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    """np.save's header (version 1.0) for a 1-D array of `n` items of `dtype`. Its padding to a multiple of 64
    bytes depends only on the number of digits of n, so numpy builds one header per (dtype, digits) and the
    shape is put in: np.save itself costs more than the copy of the data for a sequence of a few thousand."""
    shape = b"(%d,)" % n
    key = (dtype.str, len(shape))
    cached = _NPY_HEADERS.get(key)
    if cached is None:
        n0 = 10 ** (len(shape) - 4)  # as many digits as n (len("(,)") == 3)
        buf = io.BytesIO()
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n0,)}
        np.lib.format.write_array_header_1_0(buf, header)
        cached = _NPY_HEADERS[key] = (buf.getvalue(), b"(%d,)" % n0)
    template, placeholder = cached
    return template.replace(placeholder, shape, 1)


def _npy(a: np.ndarray) -> bytes:
    """The bytes `np.save(f, a, allow_pickle=False)` writes for a 1-D array."""
    return _npy_header(a.dtype, a.shape[0]) + a.tobytes()


def _image_size(img) -> int:
    return len(img.data) if img.data is not None else img.size  # a file's size as checked by the encode pass


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """The members of one packed sequence's sample, encoded once: what is written and what the size rule
    measures. Images are read (and verified) only when the sample is written."""

    members: dict[str, bytes]  # the arrays and the JSON
    images: tuple[tuple[str, ImageBlob], ...]  # (member name, image), in placeholder order
    size: int  # what the sample counts against --max-shard-bytes
    documents: int
    tokens: int

    def read(self) -> dict[str, bytes]:
        """Every member's bytes, the images read."""
        return {**self.members, **{name: img.read() for name, img in self.images}}


def build_sample(seq: PackedSequence) -> Sample:
    """The one size rule of both writers: `len(member) + _TAR_OVERHEAD` summed over the sample's members, an
    image counted by its checked size, so the Ray driver cuts shards without reading an image."""
    docs = seq.docs
    tokens = [d.tokens for d in docs]
    cu = np.zeros(len(docs) + 1, dtype=ARRAYS[CU_SEQLENS])
    np.cumsum([len(t) for t in tokens], out=cu[1:])
    members = {
        TOKENS: _npy(np.concatenate(tokens).astype(ARRAYS[TOKENS], copy=False)),
        WEIGHTS: _npy(np.concatenate([d.weights for d in docs]).astype(ARRAYS[WEIGHTS], copy=False)),
        CLASSES: _npy(np.concatenate([d.classes for d in docs]).astype(ARRAYS[CLASSES], copy=False)),
        CU_SEQLENS: _npy(cu),
        JSON: _json_member(docs),
    }
    images = tuple((IMAGE_MEMBER.format(n, img.ext), img)
                   for n, img in enumerate(img for d in docs for img in d.images))
    if images:
        members.update(_image_count_members(docs))
    size = (sum(map(len, members.values())) + sum(_image_size(img) for _, img in images)
            + (len(members) + len(images)) * _TAR_OVERHEAD)
    return Sample(members=members, images=images, size=size, documents=len(docs), tokens=int(cu[-1]))


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


def sample_size(seq: PackedSequence) -> int:
    """What the sample of `seq` counts against --max-shard-bytes (`build_sample`), without reading an image."""
    return build_sample(seq).size


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


@dataclass(frozen=True, kw_only=True, slots=True)
class WrittenShard:
    """A finished shard: its manifest entry, and where every sample and member lies in it (the energon index)."""

    entry: ShardEntry
    layout: ShardLayout


class _ShardFile:
    """One shard being written: under its temporary name, hashed and counted as it goes, its layout recorded."""

    def __init__(self, out_dir: Path, index: int) -> None:
        self.name = SHARD_PATTERN.format(index)
        self._target = AtomicFile(out_dir / self.name)
        self._target.discard()  # a killed run's leftover
        self._file = open(self._target.temp, "wb")
        self._hash = _HashingFile(self._file)
        self.count = self._docs = self._tokens = 0
        self._offset = 0  # where the next member's header starts
        self._samples: list[tuple[str, int]] = []  # (key, offset of its first header)
        self._parts: list[tuple[int, str, int, int]] = []  # (sample index, part, data offset, data size)

    def write(self, key: int, sample: Sample) -> None:
        name = f"{key:09d}"  # dot-free, sortable, unique across shards
        members = sample.read()
        index, offset, chunks = len(self._samples), self._offset, []
        self._samples.append((name, offset))
        for part in sorted(members):  # TarWriter's member order
            data = members[part]
            header = _HEADERS.header(f"{name}.{part}", len(data))
            offset += len(header)
            self._parts.append((index, part, offset, len(data)))
            pad = padding(len(data))
            chunks += (header, data, pad)
            offset += len(data) + len(pad)
        self._hash.write(b"".join(chunks))  # one write and one hash update per sample
        self._offset = offset
        self.count += 1
        self._docs += sample.documents
        self._tokens += sample.tokens

    def finish(self) -> WrittenShard:
        self._hash.write(end_of_archive(self._offset))
        self._file.close()
        final, sha = self._target.path, self._hash.sha.hexdigest()
        if final.is_file() and file_sha256(final) == sha:
            self._target.discard()  # a resumed run: the shard from before the crash is verified complete; keep it
        else:
            self._target.commit()
        ends = [offset for _, offset in self._samples[1:]] + [self._offset]
        samples = [(key, offset, end - offset) for (key, offset), end in zip(self._samples, ends)]
        layout = ShardLayout(name=self.name, samples=samples, parts=self._parts, end=self._offset)
        entry = ShardEntry(name=self.name, sha256=sha, bytes=self._hash.n, sequences=self.count,
                           documents=self._docs, tokens=self._tokens)
        return WrittenShard(entry=entry, layout=layout)

    def abort(self) -> None:
        """Leave no partial shard behind (e.g. on a full disk)."""
        try:
            self._file.close()
        finally:
            self._target.discard()


def write_shard(out_dir: Path, index: int, first_key: int, samples: Sequence[Sample]) -> WrittenShard:
    """Shard number `index`, holding `samples` (`build_sample` of one run of `plan_shards`) keyed from
    `first_key`, written whole: the bytes `ShardWriter` writes for the same run. Its name must already be
    claimed in the output folder."""
    shard = _ShardFile(Path(out_dir), index)
    try:
        for i, sample in enumerate(samples):
            shard.write(first_key + i, sample)
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
        self.written: list[WrittenShard] = []  # in shard order: entries for the manifest, layouts for the index
        self._seq_index = 0
        self._open_shard()

    def _open_shard(self) -> None:
        self.claim(SHARD_PATTERN.format(len(self.written)))
        self._shard = _ShardFile(self.out_dir, len(self.written))

    def _finish_shard(self) -> None:
        self.written.append(self._shard.finish())

    def write(self, seq: PackedSequence) -> None:
        sample = build_sample(seq)
        if self._plan.add(sample.size):
            self._finish_shard()
            self._open_shard()
        self._shard.write(self._seq_index, sample)
        self._seq_index += 1

    def close(self) -> list[WrittenShard]:
        if self._shard.count:
            self._finish_shard()
        else:
            self._shard.abort()
        return self.written

    def abort(self) -> None:
        """Leave no partial shard behind (e.g. on a full disk)."""
        self._shard.abort()
