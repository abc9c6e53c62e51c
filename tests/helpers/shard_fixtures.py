"""Writes small DESIGN-format shards + manifest.json for loader tests and benchmarks (no compiler needed).

Documents are random but structured like rendered conversations (markup, system, image placeholders,
instruction, response), with the classes and LIT weights the compiler would give them, packed greedily
into sequences of `seq_len` (images expanded). The sequences written are returned for expectations.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.shards.schema import FORMAT_NAME, FORMAT_VERSION

PAD_ID = 0
IMAGE_TOKEN_ID = 3
VOCAB = 1000


@dataclass(frozen=True, kw_only=True)
class FixtureSequence:
    shard: str
    key: str
    tokens: np.ndarray
    weights: np.ndarray
    classes: np.ndarray
    cu_seqlens: np.ndarray
    images: tuple[bytes, ...]


@dataclass(frozen=True, kw_only=True)
class Fixture:
    out: Path
    sequences: list[FixtureSequence]
    seq_len: int
    image_tokens: int

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.sequences]

    def shard_path(self, i: int) -> Path:
        return self.out / f"shard-{i:06d}.tar"


def _document(rng: np.random.Generator, max_len: int, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [(TokenClass.MARKUP, 1), (TokenClass.SYSTEM, int(rng.integers(2, 8))), (TokenClass.MARKUP, 2)]
    parts += [(TokenClass.IMAGE, 1)] * n_images
    parts += [
        (TokenClass.TASK_TEMPLATE, int(rng.integers(0, 6))),
        (TokenClass.INSTRUCTION, int(rng.integers(4, max_len // 3))),
    ]
    parts += [(TokenClass.MARKUP, 2), (TokenClass.RESPONSE, int(rng.integers(4, max_len // 2)))]
    classes = np.concatenate([np.full(k, c, np.uint8) for c, k in parts])
    tokens = rng.integers(10, VOCAB, size=classes.shape[0]).astype(np.int32)
    tokens[classes == TokenClass.IMAGE] = IMAGE_TOKEN_ID
    return tokens, classes


def _png(rng: np.random.Generator, size: tuple[int, int], fmt: str = "PNG") -> bytes:
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def write_shards(
    out: str | Path,
    *,
    documents: int = 60,
    seq_len: int = 256,
    image_tokens: int = 8,
    images: bool = False,
    image_size: tuple[int, int] = (24, 16),
    sequences_per_shard: int = 5,
    seed: int = 0,
    max_doc_len: int | None = None,
) -> Fixture:
    """Write shards and a manifest to `out`; documents are packed in order, greedily."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    table = weight_table(class_weights("lit"))
    max_len = max_doc_len or max(seq_len // 3, 24)
    packed: list[list[tuple[np.ndarray, np.ndarray, list[bytes]]]] = [[]]
    used = 0
    for _ in range(documents):
        n_img = int(rng.integers(0, 3)) if images else 0
        tokens, classes = _document(rng, max_len, n_img)
        length = tokens.shape[0] + n_img * (image_tokens - 1)
        if length > seq_len:
            continue
        if used + length > seq_len:
            packed.append([])
            used = 0
        pics = [_png(rng, image_size) for _ in range(n_img)]
        packed[-1].append((tokens, classes, pics))
        used += length
    sequences: list[FixtureSequence] = []
    shard_entries = []
    for shard_index in range(0, len(packed), sequences_per_shard):
        name = f"shard-{shard_index // sequences_per_shard:06d}.tar"
        group = packed[shard_index : shard_index + sequences_per_shard]
        with wds.TarWriter(str(out / name), encoder=False, mtime=0) as sink:
            for j, docs in enumerate(group):
                key = f"s{shard_index // sequences_per_shard:06d}-{j:06d}"
                tokens = np.concatenate([d[0] for d in docs])
                classes = np.concatenate([d[1] for d in docs])
                cu = np.concatenate([[0], np.cumsum([d[0].shape[0] for d in docs])]).astype(np.int32)
                weights = table[classes]
                weights[cu[:-1]] = 0.0
                pics = [p for d in docs for p in d[2]]
                meta = [
                    {"id": f"doc{k}", "tokens": int(d[0].shape[0]), "images": len(d[2])} for k, d in enumerate(docs)
                ]
                sample = {
                    "__key__": key,
                    "tokens.npy": _npy(tokens),
                    "weights.npy": _npy(weights),
                    "classes.npy": _npy(classes),
                    "cu_seqlens.npy": _npy(cu),
                    "json": json.dumps(meta).encode(),
                }
                sample.update({f"img{k:03d}.png": p for k, p in enumerate(pics)})
                sink.write(sample)
                sequences.append(
                    FixtureSequence(
                        shard=name,
                        key=key,
                        tokens=tokens,
                        weights=weights,
                        classes=classes,
                        cu_seqlens=cu,
                        images=tuple(pics),
                    )
                )
        shard_entries.append(
            {
                "name": name,
                "sequences": len(group),
                "documents": sum(len(d) for d in group),
                "tokens": sum(sum(x[0].shape[0] for x in d) for d in group),
            }
        )
    _write_manifest(out, shard_entries, seq_len=seq_len, image_tokens=image_tokens)
    return Fixture(out=out, sequences=sequences, seq_len=seq_len, image_tokens=image_tokens)


def _write_manifest(out: Path, entries: list[dict], *, seq_len: int, image_tokens: int) -> None:
    for entry in entries:
        data = (out / entry["name"]).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest = {
        "format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
        "config": {
            "seq_len": seq_len,
            "image_tokens": image_tokens,
            "pad_id": PAD_ID,
            "mode": "lit",
            "weights": {c.label: w for c, w in class_weights("lit").items()},
        },
        "shards": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def refresh_manifest(out: Path) -> None:
    """Recompute sha256/bytes after a test edited a shard, so that member-level checks are what fails."""
    manifest = json.loads((out / "manifest.json").read_text())
    _write_manifest(
        out, manifest["shards"], seq_len=manifest["config"]["seq_len"], image_tokens=manifest["config"]["image_tokens"]
    )


def edit_shard(path: Path, edit: Callable[[str, bytes], bytes | None]) -> None:
    """Rewrite a shard member by member: `edit(name, data)` returns new bytes, or None to drop the member."""
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            new = edit(name, data)
            if new is not None:
                info = tarfile.TarInfo(name)
                info.size = len(new)
                tar.addfile(info, io.BytesIO(new))


# ---- hostile members (issue 12): sizes in headers that lie ---------------------------------------------------


def npy_claiming(shape: tuple[int, ...], data: bytes, dtype: str = "<i4") -> bytes:
    """An .npy member whose header declares `shape` but which holds only `data` after the header."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def sparse_member(name: str, data: bytes, real_size: int) -> bytes:
    """A GNU sparse tar member (header + data blocks): `data` on disk, read back as `real_size` bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.type = len(data), tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:398] = tarfile.itn(real_size - len(data), 12, tarfile.GNU_FORMAT)  # the one data region: at the end
    header[398:410] = tarfile.itn(len(data), 12, tarfile.GNU_FORMAT)
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)  # realsize: what a reader expands it to
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % tarfile.calc_chksums(bytes(header))[0]
    return bytes(header) + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def append_raw_member(path: Path, raw: bytes) -> None:
    """Append raw header + data blocks after a shard's last member, keeping a valid end-of-archive marker."""
    with tarfile.open(path) as tar:
        tar.getmembers()
        end = tar.offset
    path.write_bytes(path.read_bytes()[:end] + raw + b"\0" * 1024)
