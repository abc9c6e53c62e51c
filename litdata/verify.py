"""`litdata verify DIR`: check every shard against the manifest and the format, and name what is wrong."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litdata import FORMAT_NAME, shard_format
from litdata.classes import TokenClass, weight_table
from litdata.hashing import file_sha256
from litdata.verify_images import image_counts


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


def _check_sample(m: dict[str, bytes], cfg: dict, table: np.ndarray) -> tuple[list[str], tuple[int, int]]:
    arrays, errs, doc_tokens = [], [], None
    for suffix in shard_format.ARRAYS:
        try:
            arrays.append(shard_format.load_array(suffix, m.get(suffix)))
        except shard_format.FormatProblem as p:
            errs.append(str(p))
    images = shard_format.image_suffixes(m)
    extra = sorted(set(m) - set(shard_format.ARRAYS) - set(shard_format.IMAGE_ARRAYS) - {"json", *images})
    if extra:
        errs.append(f"unexpected members {extra}")
    if errs:
        return errs, (0, 0)
    tokens, weights, classes, cu = arrays
    try:
        doc_tokens = [d.get("tokens") for d in shard_format.load_json(m.get("json"), documents=True)]
    except shard_format.FormatProblem as p:
        errs.append(str(p))
    errs += [str(p) for p in shard_format.array_problems(tokens, weights, classes, cu, doc_tokens)]
    if not errs:
        expected = table[classes]
        expected[cu[:-1]] = 0
        if not np.array_equal(expected, weights):
            bad = np.flatnonzero(expected != weights)
            errs.append(f"weights disagree with classes x manifest weights at {bad[:5].tolist()}")
    n_img = int(np.count_nonzero(tokens == cfg["image_token_id"]))
    if [s.partition(".")[0] for s in images] != [f"img{i:03d}" for i in range(n_img)]:
        errs.append(f"{n_img} image tokens but image members {images}")
    try:
        counts = image_counts(m, [m[s] for s in images] if len(images) == n_img else None, n_img, cfg)
    except shard_format.FormatProblem as p:
        errs.append(str(p))
        counts = np.zeros(0, dtype=np.int32)
    expanded = len(tokens) + int(counts.sum()) - len(counts)
    if expanded > cfg["seq_len"]:
        errs.append(f"expanded length {expanded} > seq_len {cfg['seq_len']}")
    return errs, (len(cu) - 1, len(tokens))


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
                for key, infos in shard_format.tar_samples(tar):
                    errs, (d, t) = _check_sample({s: tar.extractfile(i).read() for s, i in infos.items()}, cfg, table)
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
