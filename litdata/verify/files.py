"""What `litdata verify` checks besides the shards: the manifest's token totals and the side files.

The shards are the ground truth; `verify` adds each sample to a `ShardTotals` and collects each shard's sample
offsets, and this module compares the manifest's `tokens` section, `rejects.jsonl`, `templates.parquet`,
`.nv-meta/` and every `SHARD.tar.idx` with them. Each problem is one line naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.shards import reader as shard_reader
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_sections import Counts, TemplatesEntry, TokenTotals
from litdata.weigh import weigh_sequence

_VIT = weight_table(class_weights("vit"))
_LIT = weight_table(class_weights("lit"))
MAX_REJECT_LINE = 64 << 20  # a reject line holds a message and an id, never more than a record's bound
NV_META_FILES = (".info.json", "split.yaml", "dataset.yaml", "index.sqlite", "index.uuid")


@dataclass
class ShardTotals:
    """What the manifest's `tokens` section must say, summed over every sample whose arrays decoded."""

    by_class: np.ndarray = field(default_factory=lambda: np.zeros(len(TokenClass), dtype=np.int64))
    expanded: int = 0
    supervised_vit: int = 0
    supervised_lit: int = 0
    weight_sum: float = 0.0

    def add(self, classes: np.ndarray, weights: np.ndarray, cu: np.ndarray, expanded: int) -> None:
        self.by_class += np.bincount(classes, minlength=len(TokenClass))[: len(TokenClass)]
        self.expanded += expanded
        starts = cu[:-1][(cu[:-1] >= 0) & (cu[:-1] < len(classes))]
        for table, attr in ((_VIT, "supervised_vit"), (_LIT, "supervised_lit")):
            supervised = np.count_nonzero(weigh_sequence(classes, starts, table))
            setattr(self, attr, getattr(self, attr) + int(supervised))
        self.weight_sum += float(weights.sum(dtype=np.float64))

    def manifest_problems(self, tokens: TokenTotals) -> list[str]:
        found = {
            "total": int(self.by_class.sum()),
            "expanded_total": self.expanded,
            "supervised_vit": self.supervised_vit,
            "supervised_lit": self.supervised_lit,
            **{f"by_class.{c.label}": int(self.by_class[c]) for c in TokenClass},
        }
        claimed = {**tokens.to_json(), **{f"by_class.{k}": v for k, v in tokens.by_class.items()}}
        out = [f"manifest.json: tokens.{k} is {claimed.get(k)}, the shards hold {v}"
               for k, v in found.items() if claimed.get(k) != v]
        w = tokens.weight_sum
        if not math.isclose(w, self.weight_sum, rel_tol=1e-6, abs_tol=1e-3):
            out.append(f"manifest.json: tokens.weight_sum is {w}, the shards' weights sum to {self.weight_sum:.6f}")
        return out


def side_file_problems(out: Path, manifest: Manifest, totals: ShardTotals | None,
                       offsets: dict[str, list[int]]) -> list[str]:
    """Problems with the token totals (None: not compared) and the side files of a compile."""
    names = manifest.shard_names
    problems = []
    if totals is not None and manifest.tokens is not None:
        problems += totals.manifest_problems(manifest.tokens)
    if manifest.counts is not None:
        problems += _rejects(out, manifest.counts)
    if manifest.templates is not None:
        problems += _templates(out, manifest.templates)
    if names:
        problems += _energon(out, names, offsets)
    return problems


def _rejects(out: Path, counts: Counts) -> list[str]:
    """Every rejected record is a line of rejects.jsonl: the file exists and its reasons add up to the counts."""
    try:
        f = shard_reader.open_regular(out / "rejects.jsonl")
    except shard_reader.FormatProblem as p:
        return [f"rejects.jsonl: {p.reason} (the manifest counts {counts.rejected} rejected records)"]
    reasons: Counter = Counter()
    with f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_REJECT_LINE + 1), b""), 1):
            if len(line) > MAX_REJECT_LINE:
                return [f"rejects.jsonl: line {number} is over {MAX_REJECT_LINE} bytes"]
            if not line.strip():
                continue
            try:
                reasons[json.loads(line)["reason"]] += 1
            except (ValueError, KeyError, TypeError):
                return [f"rejects.jsonl: line {number} is not a JSON object with a 'reason'"]
    if sum(reasons.values()) != counts.rejected or dict(reasons) != counts.rejected_by_reason:
        return [f"rejects.jsonl: {sum(reasons.values())} rejects {dict(sorted(reasons.items()))}, the manifest "
                f"counts {counts.rejected} {dict(counts.rejected_by_reason)}"]
    return []


def _templates(out: Path, entry: TemplatesEntry) -> list[str]:
    if entry.file != "templates.parquet":
        return [f"manifest.json: templates.file is {entry.file!r}, expected 'templates.parquet'"]
    try:
        with shard_reader.open_regular(out / "templates.parquet") as f:
            digest = shard_reader.sha256_of(f)
    except shard_reader.FormatProblem as p:
        return [f"templates.parquet: {p.reason}"]
    return [] if digest == entry.sha256 else ["templates.parquet: sha256 differs from the manifest"]


def _energon(out: Path, names: list[str], offsets: dict[str, list[int]]) -> list[str]:
    """`.nv-meta/` and the `.idx` files must describe the shards as read, or energon loads other samples."""
    problems = []
    for name in names:
        idx = out / (name + ".idx")
        try:
            with shard_reader.open_regular(idx) as f:
                data = f.read(8 * (len(offsets.get(name, [])) + 1) + 8)
        except shard_reader.FormatProblem as p:
            problems.append(f"{idx.name}: {p.reason}")
            continue
        if name in offsets and data != struct.pack(f"<{len(offsets[name])}Q", *offsets[name]):
            problems.append(f"{idx.name}: sample offsets differ from the shard's")
    if not names:  # the compiler writes no energon metadata for a run without documents
        return problems
    meta = out / ".nv-meta"
    missing = [n for n in NV_META_FILES if not (meta / n).is_file()]
    if missing:
        return [*problems, f".nv-meta: missing {', '.join(missing)} (energon cannot open the folder)"]
    counts = {n: len(o) - 1 for n, o in offsets.items()}
    try:
        info = json.loads((meta / ".info.json").read_text())["shard_counts"]
        split = yaml.safe_load((meta / "split.yaml").read_text())["split_parts"]["train"]
        with closing(sqlite3.connect(f"file:{meta / 'index.sqlite'}?mode=ro", uri=True)) as db:
            rows = dict(db.execute("SELECT tar_file_id, COUNT(*) FROM samples GROUP BY tar_file_id").fetchall())
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError, sqlite3.Error) as e:
        return [*problems, f".nv-meta: unreadable ({type(e).__name__}: {e})"]
    if split != names:
        problems.append(".nv-meta/split.yaml: the train split does not list the manifest's shards in order")
    if len(counts) == len(names):
        if info != counts:
            problems.append(".nv-meta/.info.json: shard sample counts differ from the shards")
        if rows != {i: counts[n] for i, n in enumerate(names)}:
            problems.append(".nv-meta/index.sqlite: sample rows differ from the shards")
    return problems
