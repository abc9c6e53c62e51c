"""`litdata verify DIR`: check every shard against the manifest and the format, and name what is wrong."""

from __future__ import annotations

import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from litdata import FORMAT_NAME
from litdata.classes import TokenClass, weight_table
from litdata.hashing import file_sha256

_KEY = re.compile(r"^[0-9A-Za-z_-]+$")
_ARRAYS = {"tokens.npy": np.int32, "weights.npy": np.float32, "classes.npy": np.uint8, "cu_seqlens.npy": np.int32}
_IMAGE = re.compile(r"^img(\d{3})\.[a-z0-9]+$")


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    shards: int = 0
    sequences: int = 0
    documents: int = 0
    tokens: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _samples(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Members grouped by key, in tar order (a key's members must be contiguous, as webdataset requires)."""
    key, members, seen = None, {}, set()
    for info in tar:
        if not info.isfile():
            raise ValueError(f"member {info.name} is not a regular file")
        k, dot, suffix = info.name.partition(".")
        if not dot:
            raise ValueError(f"member {info.name} has no extension")
        if k != key:
            if key is not None:
                yield key, members
            if k in seen:
                raise ValueError(f"members of sample {k} are not contiguous")
            seen.add(k)
            key, members = k, {}
        members[suffix] = tar.extractfile(info).read()
    if key is not None:
        yield key, members


def _check_sample(key: str, m: dict[str, bytes], cfg: dict, table: np.ndarray) -> tuple[list[str], tuple[int, int]]:
    errs = []
    if not _KEY.match(key):
        errs.append(f"key {key!r} is not dot-free alphanumeric")
    arrays = {}
    for name, dtype in _ARRAYS.items():
        if name not in m:
            errs.append(f"missing member {name}")
            continue
        try:
            a = np.load(io.BytesIO(m[name]), allow_pickle=False)
        except Exception as e:
            errs.append(f"{name}: not a loadable npy array ({e})")
            continue
        if a.dtype != dtype or a.ndim != 1:
            errs.append(f"{name}: dtype {a.dtype} shape {a.shape}, expected 1-D {np.dtype(dtype)}")
            continue
        arrays[name] = a
    extra = sorted(k for k in m if k not in _ARRAYS and k != "json" and not _IMAGE.match(k))
    if extra:
        errs.append(f"unexpected members {extra}")
    if errs:
        return errs, (0, 0)
    tokens, weights, classes, cu = (arrays[k] for k in _ARRAYS)
    n = tokens.shape[0]
    if weights.shape[0] != n or classes.shape[0] != n:
        return [f"lengths differ: tokens {n}, weights {weights.shape[0]}, classes {classes.shape[0]}"], (0, 0)
    if cu.shape[0] < 2 or cu[0] != 0 or cu[-1] != n or np.any(np.diff(cu) <= 0):
        return [f"cu_seqlens {cu.tolist()[:8]}... must rise strictly from 0 to {n}"], (0, 0)
    if classes.max(initial=0) >= len(TokenClass):
        errs.append(f"classes.npy holds unknown class {int(classes.max())}")
    if not np.all(np.isfinite(weights)) or weights.min(initial=0) < 0:
        errs.append("weights.npy holds negative or non-finite weights")
    starts = cu[:-1]
    if np.any(weights[starts] != 0):
        errs.append(f"weight != 0 at document start(s) {starts[weights[starts] != 0].tolist()}")
    if not errs:
        expected = table[classes]
        expected[starts] = 0
        if not np.array_equal(expected, weights):
            bad = np.flatnonzero(expected != weights)
            errs.append(f"weights disagree with classes x manifest weights at {bad[:5].tolist()}")
    n_img = int(np.count_nonzero(tokens == cfg["image_token_id"]))
    img_members = sorted(k for k in m if _IMAGE.match(k))
    if [int(_IMAGE.match(k).group(1)) for k in img_members] != list(range(n_img)):
        errs.append(f"{n_img} image tokens but image members {img_members}")
    expanded = n + n_img * (cfg["image_tokens"] - 1)
    if expanded > cfg["seq_len"]:
        errs.append(f"expanded length {expanded} > seq_len {cfg['seq_len']}")
    try:
        docs = json.loads(m.get("json", b"")).get("documents")
        if not isinstance(docs, list) or len(docs) != cu.shape[0] - 1:
            errs.append(f"json lists {len(docs) if isinstance(docs, list) else '?'} documents, cu_seqlens {cu.shape[0] - 1}")
        elif [d.get("tokens") for d in docs] != np.diff(cu).tolist():
            errs.append("json token counts disagree with cu_seqlens")
    except (ValueError, AttributeError) as e:
        errs.append(f"json member unreadable ({e})")
    return errs, (cu.shape[0] - 1, n)


def verify(out_dir: Path, *, max_problems: int = 50) -> VerifyReport:
    rep = VerifyReport()
    mpath = out_dir / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        rep.problems.append(f"manifest.json: cannot read ({e})")
        return rep
    if manifest.get("format", {}).get("name") != FORMAT_NAME:
        rep.problems.append(f"manifest.json: format is {manifest.get('format')}, expected {FORMAT_NAME}")
        return rep
    cfg = manifest["config"]
    table = weight_table({TokenClass.parse(k): v for k, v in cfg["weights"].items()})
    listed = {s["name"] for s in manifest["shards"]}
    for stray in sorted(p.name for p in out_dir.glob("shard-*.tar") if p.name not in listed):
        rep.problems.append(f"{stray}: shard not listed in the manifest")
    for entry in manifest["shards"]:
        name, path = entry["name"], out_dir / entry["name"]
        rep.shards += 1
        if not path.is_file():
            rep.problems.append(f"{name}: missing")
            continue
        size = path.stat().st_size
        if size != entry["bytes"]:
            rep.problems.append(f"{name}: {size} bytes, manifest says {entry['bytes']}")
        if file_sha256(path) != entry["sha256"]:
            rep.problems.append(f"{name}: sha256 differs from the manifest")
        seqs = docs = toks = 0
        try:
            with tarfile.open(path, "r:") as tar:
                for key, members in _samples(tar):
                    errs, (d, t) = _check_sample(key, members, cfg, table)
                    rep.problems.extend(f"{name}: sample {key}: {e}" for e in errs)
                    seqs, docs, toks = seqs + 1, docs + d, toks + t
        except (tarfile.TarError, ValueError, EOFError, OSError) as e:
            rep.problems.append(f"{name}: unreadable tar ({e})")
            continue
        for what, got in (("sequences", seqs), ("documents", docs), ("tokens", toks)):
            if got != entry[what]:
                rep.problems.append(f"{name}: {got} {what}, manifest says {entry[what]}")
        rep.sequences, rep.documents, rep.tokens = rep.sequences + seqs, rep.documents + docs, rep.tokens + toks
        if len(rep.problems) >= max_problems:
            rep.problems.append(f"stopped after {max_problems} problems")
            return rep
    counts = manifest["counts"]
    if rep.documents != counts["documents_written"] or rep.sequences != counts["sequences"]:
        rep.problems.append(f"manifest counts say {counts['documents_written']} documents in {counts['sequences']} "
                            f"sequences, shards hold {rep.documents} in {rep.sequences}")
    if counts["records_read"] != counts["documents_written"] + counts["rejected"]:
        rep.problems.append("manifest: records_read != documents_written + rejected")
    return rep
