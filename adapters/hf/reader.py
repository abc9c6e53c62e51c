"""Reading a compiled folder for the Hugging Face adapter: the manifest, the shards, one checked sample at a time.

Samples are grouped and decoded by `litdata.shards.reader` (the one sample contract: member names, dtypes, value
checks; nothing is ever unpickled). Whole-file checks (size and sha256 against the manifest, the end-of-archive
marker) and the manifest lookup are shared with the Megatron adapter (`adapters.megatron.shards`), so that every
trainer accepts and refuses the same folders. Every problem raises `CorruptShardError` naming shard and member.

Reading is split in two steps: `iter_members` only reads a sample's bytes (cheap, and needed by every loader worker
to keep the global order), `decode` checks and decodes the arrays (paid only by the worker that keeps the sample).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from adapters.megatron.shards import CorruptShardError, ShardInfo, ShardSet, check_file, resolve_shards
from litdata.shards import reader as shard_reader
from litdata.shards.reader import FormatProblem, image_token_counts

__all__ = ["CorruptShardError", "Folder", "Sample", "ShardInfo", "open_folder"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One packed sequence, arrays checked; images stay encoded until the collator needs them."""

    shard: str
    key: str
    tokens: np.ndarray  # int32 [n], one placeholder token per image
    weights: np.ndarray  # float32 [n], weights[i] is the weight of predicting tokens[i]
    classes: np.ndarray  # uint8 [n]
    cu_seqlens: np.ndarray  # int32 [d+1], document starts in token space
    placeholders: np.ndarray  # int64 [images], token positions of the image placeholders
    image_tokens: np.ndarray  # int32 [images], tokens each placeholder expands into
    images: tuple[bytes, ...]  # encoded image bytes, in placeholder order
    image_members: tuple[str, ...]  # their member names, for error messages
    meta: object


@dataclass(frozen=True, kw_only=True, slots=True)
class Folder:
    """A compiled output folder (or list of tars) with what the adapter needs from its manifest."""

    shardset: ShardSet
    image_token_id: int | None  # the tokenizer's placeholder id
    fixed_image_tokens: int | None  # per-image count for shards written before per-image counts (format 1)
    seq_len: int | None

    @property
    def shards(self) -> tuple[ShardInfo, ...]:
        return self.shardset.shards

    def total_sequences(self) -> int | None:
        counts = [s.sequences for s in self.shards]
        return None if any(c is None for c in counts) else sum(counts)  # type: ignore[misc]


def open_folder(data) -> Folder:
    """`data`: a compiled folder, one tar, a brace pattern or a list of tars (see `resolve_shards`)."""
    shardset = resolve_shards(data)
    manifest = shardset.manifest
    return Folder(
        shardset=shardset,
        image_token_id=shardset.image_token_id,
        # format 2 stores every image's count in its sample
        fixed_image_tokens=manifest.fixed_image_tokens if manifest is not None else None,
        seq_len=shardset.seq_len,
    )


def iter_members(info: ShardInfo, *, verify_checksums: bool = True) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {suffix: bytes}) for every sample of one shard, after the whole-file checks."""
    check_file(info, verify_checksums=verify_checksums)
    count = 0
    current = "<tar header>"
    try:
        with tarfile.open(info.path, mode="r:") as tar:
            for key, members in shard_reader.tar_samples(tar):
                out = {}
                for suffix, member in members.items():
                    current = f"{key}.{suffix}"
                    handle = tar.extractfile(member)
                    out[suffix] = handle.read() if handle is not None else b""
                count += 1
                yield key, out
    except FormatProblem as exn:  # from grouping: it names the whole member
        raise CorruptShardError(info.name, exn.member, exn.reason) from None
    except (tarfile.TarError, OSError, EOFError) as exn:
        raise CorruptShardError(info.name, current, f"{type(exn).__name__}: {exn}") from None
    if info.sequences is not None and count != info.sequences:
        raise CorruptShardError(info.name, "<tar>", f"{count} sequences, manifest says {info.sequences}")


def decode(folder: Folder, shard: str, key: str, members: Mapping[str, bytes]) -> Sample:
    """Check and decode one sample's members; the image count must match the placeholders exactly."""
    try:
        s = shard_reader.load_sample(members, seq_len=folder.seq_len, vocab_size=folder.shardset.vocab_size)
        images = s.images
        placeholders = _placeholders(folder, s.tokens, s.classes)
        if len(images) != len(placeholders):
            raise FormatProblem(images[-1] if images else "img000", f"{len(images)} images for "
                                f"{len(placeholders)} placeholders")
        counts = (image_token_counts(s.per_image, len(images), folder.fixed_image_tokens) if images
                  else np.zeros(0, np.int32))
    except FormatProblem as exn:
        raise CorruptShardError(shard, f"{key}.{exn.member}", exn.reason) from None
    return Sample(shard=shard, key=key, tokens=s.tokens, weights=s.weights, classes=s.classes, cu_seqlens=s.cu_seqlens,
                  placeholders=placeholders, image_tokens=counts, images=tuple(members[m] for m in images),
                  image_members=tuple(f"{key}.{m}" for m in images), meta=s.meta)


def _placeholders(folder: Folder, tokens: np.ndarray, classes: np.ndarray) -> np.ndarray:
    from litdata.classes import TokenClass

    if folder.image_token_id is not None:
        return np.flatnonzero(tokens == folder.image_token_id)
    return np.flatnonzero(classes == TokenClass.IMAGE)  # tars without a manifest: the class marks placeholders

