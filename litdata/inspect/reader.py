"""Read a compile's output folder back: manifest, shards (lazily, member by member), side files."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litdata.classes import TokenClass, class_weights
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_check import ManifestError
from litdata.shards.reader import (
    FormatProblem,
    array_problems,
    image_suffixes,
    image_tile_counts,
    image_token_counts,
    load_array,
    load_json,
    open_regular,
    tar_samples,
)
from litdata.shards.schema import IMAGE_ARRAYS, JSON, MANIFEST, max_items


class InspectError(ValueError):
    """The folder cannot be inspected; the message names the file and what is wrong."""


@dataclass(frozen=True, kw_only=True)
class DocumentMeta:
    """One entry of a sample's `KEY.json` (where the document came from)."""

    id: str
    file: str
    index: int
    tokens: int
    images: int
    truncated_from: int | None = None

    @classmethod
    def from_json(cls, d: dict) -> DocumentMeta:
        return cls(id=str(d.get("id", "")), file=str(d.get("file", "")), index=int(d.get("index", -1)),
                   tokens=int(d.get("tokens", 0)), images=int(d.get("images", 0)),
                   truncated_from=d.get("truncated_from"))


class Members:
    """The tar members of one sample; bytes are read only when asked for, so scans skip images."""

    def __init__(self, tar: tarfile.TarFile, shard: str, key: str, infos: dict[str, tarfile.TarInfo],
                 seq_len: int | None = None, vocab_size: int | None = None, fixed: int | None = None) -> None:
        self._tar, self.shard, self.key, self._infos = tar, shard, key, infos
        self.vocab_size = vocab_size  # token ids past it would make the tokenizer fail to decode
        self._max_items = max_items(seq_len)
        self.fixed = fixed  # format 1: every image's count (the manifest's image_tokens); format 2: None

    def error(self, problem: FormatProblem) -> InspectError:
        return InspectError(f"{self.shard}: sample {self.key}: {problem}")

    def read(self, suffix: str) -> bytes:
        info = self._infos.get(suffix)
        if info is None:
            raise self.error(FormatProblem(suffix, "missing"))
        f = self._tar.extractfile(info)
        assert f is not None  # members were checked to be regular files
        return f.read()

    def array(self, name: str) -> np.ndarray:
        try:
            return load_array(f"{name}.npy", self.read(f"{name}.npy"), self._max_items)
        except FormatProblem as p:
            raise self.error(p) from None

    def documents(self) -> tuple[DocumentMeta, ...]:
        try:
            return tuple(DocumentMeta.from_json(d) for d in load_json(self.read(JSON), documents=True))
        except FormatProblem as p:
            raise self.error(p) from None

    def images(self) -> tuple[tuple[str, bytes], ...]:
        """(member suffix such as img000.png, bytes), in placeholder order."""
        return tuple((s, self.read(s)) for s in image_suffixes(self._infos))

    def image_counts(self, n_images: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Each image's count of tokens (KEY.image_tokens.npy, or the fixed count of format 1), and its tiles
        (KEY.image_tiles.npy; None for rules without tiles)."""
        names = [s for s in IMAGE_ARRAYS if s in self._infos]
        try:
            arrays = {s: load_array(s, self.read(s)) for s in names}
            counts = image_token_counts(arrays, n_images, self.fixed)
            tiles = image_tile_counts(arrays, n_images)
        except FormatProblem as p:
            raise self.error(p) from None
        return counts, tiles


@dataclass(frozen=True, kw_only=True)
class PackedDocument:
    """One document cut out of its packed sequence, with the images its placeholders stand for."""

    meta: DocumentMeta
    shard: str
    key: str
    position: int  # 0-based index of the document in its sequence
    siblings: int  # documents in the sequence
    tokens: np.ndarray
    classes: np.ndarray
    weights: np.ndarray
    images: tuple[tuple[str, bytes], ...]
    image_counts: tuple[int, ...] = ()  # tokens per image once expanded, in placeholder order
    image_tiles: tuple[int, ...] = ()  # tiles per image, for tiling rules

    def image_label(self, n: int) -> str:
        """`[image 2: 1280 tokens, 5 tiles]` for the document's 1-based image `n`."""
        count = f"{self.image_counts[n - 1]} tokens" if 0 < n <= len(self.image_counts) else "? tokens"
        tiles = f", {self.image_tiles[n - 1]} tiles" if 0 < n <= len(self.image_tiles) else ""
        return f"[image {n}: {count}{tiles}]"


@dataclass(frozen=True, kw_only=True)
class ShardSequence:
    """One sample of a shard (a packed sequence) as read back, checked, with its documents' metadata."""

    shard: str
    key: str
    tokens: np.ndarray
    weights: np.ndarray
    classes: np.ndarray
    cu_seqlens: np.ndarray
    metas: tuple[DocumentMeta, ...]
    images: tuple[tuple[str, bytes], ...]
    image_counts: np.ndarray  # int32 [images]
    image_tiles: np.ndarray | None = None  # int32 [images], tiling rules only

    @property
    def expanded_length(self) -> int:
        return len(self.tokens) + int(self.image_counts.sum()) - len(self.image_counts)

    @classmethod
    def load(cls, m: Members) -> ShardSequence:
        images = m.images()
        counts, tiles = m.image_counts(len(images))
        seq = cls(shard=m.shard, key=m.key, tokens=m.array("tokens"), weights=m.array("weights"),
                  classes=m.array("classes"), cu_seqlens=m.array("cu_seqlens"), metas=m.documents(),
                  images=images, image_counts=counts, image_tiles=tiles)
        doc_tokens = [d.tokens for d in seq.metas]
        if problems := array_problems(seq.tokens, seq.weights, seq.classes, seq.cu_seqlens, doc_tokens,
                                      m.vocab_size):
            raise m.error(problems[0])
        return seq

    def documents(self, image_token_id: int) -> list[PackedDocument]:
        placeholders = np.concatenate([[0], np.cumsum(self.tokens == image_token_id)])
        out = []
        for i, meta in enumerate(self.metas):
            a, b = int(self.cu_seqlens[i]), int(self.cu_seqlens[i + 1])
            ia, ib = int(placeholders[a]), int(placeholders[b])
            tiles = tuple(int(t) for t in self.image_tiles[ia:ib]) if self.image_tiles is not None else ()
            out.append(PackedDocument(meta=meta, shard=self.shard, key=self.key, position=i, siblings=len(self.metas),
                                      tokens=self.tokens[a:b], classes=self.classes[a:b], weights=self.weights[a:b],
                                      images=self.images[ia:ib],
                                      image_counts=tuple(int(c) for c in self.image_counts[ia:ib]), image_tiles=tiles))
        return out


class CompiledFolder:
    """A compile's output folder, opened through its manifest (read back; `output.folder.OutputWriter` writes it)."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path, self.manifest = Path(path), manifest

    @classmethod
    def open(cls, path: str | Path) -> CompiledFolder:
        p = Path(path)
        if not p.is_dir():
            raise InspectError(f"{p}: no such folder")
        mf = p / MANIFEST
        if not mf.is_file():
            raise InspectError(f"{p}: no {MANIFEST} (not a finished litdata compile)")
        try:  # checks every shard name: nothing the manifest names outside the folder is ever opened
            return cls(p, Manifest.read(mf, compiled=True))
        except ManifestError as e:
            raise InspectError(f"{mf}: not a litdata manifest ({e.reason})") from None

    @property
    def config(self) -> Mapping[str, Any]:
        return self.manifest.config

    @property
    def shard_names(self) -> list[str]:
        return self.manifest.shard_names

    @property
    def fixed_image_tokens(self) -> int | None:
        """Format 1 (no image_token_rule in the config): the one count of every image. Format 2: None, the
        counts are in each sample's image_tokens.npy."""
        if self.manifest.image_token_rule is not None:
            return None
        return self.manifest.image_tokens or 1

    @property
    def image_rule_label(self) -> str:
        """`576 tokens per image` for a fixed count, else the rule, e.g. `image tokens: processor:llava_next`."""
        fixed = self.manifest.image_tokens
        return f"{fixed} tokens per image" if fixed is not None else f"image tokens: {self.manifest.image_token_rule}"

    @property
    def image_token_id(self) -> int:
        token_id = self.manifest.image_token_id
        return token_id if token_id is not None else -1

    def members(self, shard: str | None = None) -> Iterator[Members]:
        names = self.shard_names
        if shard is not None:
            if shard not in names:
                raise InspectError(f"--shard {shard}: not in the manifest (shards: {', '.join(names[:5])}"
                                   f"{', ...' if len(names) > 5 else ''})")
            names = [shard]
        seq_len, vocab_size = self.manifest.seq_len, self.manifest.vocab_size
        for name in names:
            path = self.path / name
            try:  # covers opening and grouping; the caller's reads of a yielded sample's members raise there
                with open_regular(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
                    for key, infos in tar_samples(tar, seq_len):
                        yield Members(tar, name, key, infos, seq_len, vocab_size, fixed=self.fixed_image_tokens)
            except (OSError, tarfile.TarError, FormatProblem) as e:
                raise InspectError(f"{path}: cannot read the shard ({e})") from None

    def sequences(self, shard: str | None = None) -> Iterator[ShardSequence]:
        for m in self.members(shard):
            yield ShardSequence.load(m)

    def find_document(self, doc_id: str, shard: str | None = None) -> PackedDocument | None:
        """The first document with this source id; only the `.json` members are read until it is found."""
        for m in self.members(shard):
            if any(d.id == doc_id for d in m.documents()):
                seq = ShardSequence.load(m)
                return next(d for d in seq.documents(self.image_token_id) if d.meta.id == doc_id)
        return None

    def weights(self, mode: str | None = None) -> dict[TokenClass, float]:
        """Class weights as compiled, or for `mode` with the compile's per-class overrides carried over."""
        compiled = {TokenClass.parse(k): float(v) for k, v in self.manifest.weights.items()}
        if mode is None or mode == self.manifest.mode:
            return compiled
        base = class_weights(self.manifest.mode or "lit")
        overrides = {c: w for c, w in compiled.items() if base.get(c) != w}
        return class_weights(mode, overrides)

    def load_tokenizer(self, override: str | Path | None = None) -> Any:
        """The compile's tokenizer (with `<image>` added as the compiler did); checked against the manifest."""
        from litdata.tokenize.tokens import TokenizerError, load_tokenizer

        info = self.manifest.tokenizer
        path = override or info.get("path")
        if not path:
            raise InspectError("the manifest names no tokenizer path; pass --tokenizer PATH")
        try:
            tok, got = load_tokenizer(path)
        except TokenizerError as e:
            hint = "" if override else " (the folder recorded in manifest.json; pass --tokenizer PATH if it moved)"
            raise InspectError(f"{e}{hint}") from None
        if self.image_token_id >= 0 and got.image_token_id != self.image_token_id:
            raise InspectError(f"tokenizer {path}: <image> is token {got.image_token_id}, the manifest says "
                               f"{self.image_token_id}; this is not the tokenizer the shards were compiled with")
        if info.get("vocab_hash") and got.vocab_hash != info["vocab_hash"]:
            raise InspectError(f"tokenizer {path}: vocabulary hash differs from the manifest's; "
                               "decoded text would be wrong")
        return tok

    def jsonl(self, name: str, limit: int) -> list[dict]:
        """The first `limit` rows of a side file such as rejects.jsonl ([] when absent)."""
        path, rows = self.path / name, []
        if not path.is_file():
            return rows
        with open(path, encoding="utf-8") as f:
            for line in f:
                if len(rows) >= limit:
                    break
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        rows.append({"unreadable line": line.strip()[:200]})
        return rows

    def templates(self):
        """templates.parquet as a polars frame, or None when the compile wrote none."""
        import polars as pl

        path = self.path / "templates.parquet"
        # glob=False: an output folder named like "out[/b]" is a path, not a pattern.
        return pl.read_parquet(path, glob=False) if path.is_file() else None
