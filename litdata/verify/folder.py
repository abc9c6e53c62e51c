"""`litdata verify DIR`: check every shard against the manifest and the format, and name what is wrong.

Shard names come from the manifest and must be plain `shard-NNNNNN.tar` names of regular files in DIR; every
member and array header is bounded before it is read (`shard_reader.check_member`, `load_array`). The side files
and the manifest's totals are checked by `verify_files` against what the shards were found to hold."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litdata.classes import TokenClass, weight_table
from litdata.shards import reader as shard_reader
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_check import ManifestError
from litdata.shards.schema import ARRAYS, IMAGE_ARRAYS, JSON, MANIFEST, max_items
from litdata.verify.files import ShardTotals, side_file_problems
from litdata.verify.images import image_counts
from litdata.weigh import weigh_sequence


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


def _check_sample(m: dict[str, bytes], manifest: Manifest, table: np.ndarray,
                  totals: ShardTotals | None = None) -> tuple[list[str], tuple[int, int]]:
    arrays, errs, doc_tokens = [], [], None
    seq_len = manifest.seq_len
    for suffix in ARRAYS:
        try:
            arrays.append(shard_reader.load_array(suffix, m.get(suffix), max_items(seq_len)))
        except shard_reader.FormatProblem as p:
            errs.append(str(p))
    images = shard_reader.image_suffixes(m)
    extra = sorted(set(m) - set(ARRAYS) - set(IMAGE_ARRAYS) - {JSON, *images})
    if extra:
        errs.append(f"unexpected members {extra}")
    if errs:
        return errs, (0, 0)
    tokens, weights, classes, cu = arrays
    try:
        doc_tokens = [d.get("tokens") for d in shard_reader.load_json(m.get(JSON), documents=True)]
    except shard_reader.FormatProblem as p:
        errs.append(str(p))
    errs += [str(p) for p in shard_reader.array_problems(tokens, weights, classes, cu, doc_tokens,
                                                         manifest.vocab_size)]
    if not errs:
        expected = weigh_sequence(classes, cu[:-1], table)
        if not np.array_equal(expected, weights):
            bad = np.flatnonzero(expected != weights)
            errs.append(f"weights disagree with classes x manifest weights at {bad[:5].tolist()}")
    n_img = int(np.count_nonzero(tokens == manifest.image_token_id))
    if [s.partition(".")[0] for s in images] != [f"img{i:03d}" for i in range(n_img)]:
        errs.append(f"{n_img} image tokens but image members {images}")
    try:
        counts = image_counts(m, [m[s] for s in images] if len(images) == n_img else None, n_img, manifest)
    except shard_reader.FormatProblem as p:
        errs.append(str(p))
        counts = np.zeros(0, dtype=np.int32)
    expanded = len(tokens) + int(counts.sum()) - len(counts)
    if expanded > seq_len:
        errs.append(f"expanded length {expanded} > seq_len {seq_len}")
    if totals is not None and len(classes) == len(tokens):
        totals.add(classes, weights, cu, expanded)
    return errs, (len(cu) - 1, len(tokens))


def verify(out_dir: Path, *, max_problems: int = 50) -> VerifyReport:
    rep = VerifyReport()
    try:  # shard names are checked there: nothing the manifest names outside the folder is ever opened
        manifest = Manifest.read(out_dir / MANIFEST, compiled=True)
        table = weight_table({TokenClass.parse(k): v for k, v in manifest.weights.items()})
    except ManifestError as e:
        rep.problems.append(f"{MANIFEST}: {e.reason}")
        return rep
    except ValueError as e:  # an unknown class label in config.weights
        rep.problems.append(f"{MANIFEST}: config.weights: {e}")
        return rep
    listed = set(manifest.shard_names)
    for stray in sorted(p.name for p in out_dir.glob("shard-*.tar") if p.name not in listed):
        rep.problems.append(f"{stray}: shard not listed in the manifest")
    totals, offsets = ShardTotals(), {}
    for entry in manifest.shards:
        name = entry.name
        rep.shards += 1
        try:
            f = shard_reader.open_regular(out_dir / name)
        except shard_reader.FormatProblem as p:
            rep.problems.append(f"{name}: missing" if p.reason.startswith("cannot open") else str(p))
            continue
        seqs = docs = toks = 0
        with f:
            size = os.fstat(f.fileno()).st_size
            if size != entry.bytes:
                rep.problems.append(f"{name}: {size} bytes, manifest says {entry.bytes}")
            if shard_reader.sha256_of(f) != entry.sha256:
                rep.problems.append(f"{name}: sha256 differs from the manifest")
            f.seek(0)
            try:
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    starts = []
                    for key, infos in shard_reader.tar_samples(tar, manifest.seq_len):
                        starts.append(next(iter(infos.values())).offset)
                        data = {s: tar.extractfile(i).read() for s, i in infos.items()}
                        errs, (d, t) = _check_sample(data, manifest, table, totals)
                        rep.problems.extend(f"{name}: sample {key}: {e}" for e in errs)
                        seqs, docs, toks = seqs + 1, docs + d, toks + t
                    offsets[name] = [*starts, tar.offset]  # what SHARD.tar.idx must hold
            except (tarfile.TarError, ValueError, EOFError, OSError) as e:
                rep.problems.append(f"{name}: unreadable tar ({e})")
                continue
        for what, got in (("sequences", seqs), ("documents", docs), ("tokens", toks)):
            if got != getattr(entry, what):
                rep.problems.append(f"{name}: {got} {what}, manifest says {getattr(entry, what)}")
        rep.sequences, rep.documents, rep.tokens = rep.sequences + seqs, rep.documents + docs, rep.tokens + toks
        if len(rep.problems) >= max_problems:
            rep.problems.append(f"stopped after {max_problems} problems")
            return rep
    counts = manifest.counts
    assert counts is not None  # read with compiled=True
    if rep.documents != counts.documents_written or rep.sequences != counts.sequences:
        rep.problems.append(f"manifest counts say {counts.documents_written} documents in {counts.sequences} "
                            f"sequences, shards hold {rep.documents} in {rep.sequences}")
    if counts.records_read != counts.documents_written + counts.rejected:
        rep.problems.append("manifest: records_read != documents_written + rejected")
    # The manifest's token totals are compared only when the shards themselves are sound: otherwise they differ
    # for the reason already named.
    rep.problems += side_file_problems(out_dir, manifest, None if rep.problems else totals, offsets)
    return rep
