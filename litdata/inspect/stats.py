"""One streaming pass over the shards for the HTML report: tokens by class per source file, and a sample.

Only the small members (classes, weights, cu_seqlens, json) of every sequence are read; tokens and images
only for the sequences that hold a sampled document, so a scan of a large folder stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.inspect.reader import CompiledFolder, PackedDocument, ShardSequence

N_CLASSES = len(TokenClass)
CLASS_COLUMNS = [f"tokens_{c.label}" for c in TokenClass]
MODE_TABLES = {mode: weight_table(class_weights(mode)) for mode in ("vit", "lit")}


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    # file, documents, images, tokens_<class>..., tokens, supervised_vit, supervised_lit, weight_sum
    by_source: pl.DataFrame
    samples: list[PackedDocument]


def sample_positions(total: int, n: int) -> np.ndarray:
    """`n` global document numbers spread evenly over all shards (deterministic: same folder, same sample)."""
    if total <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    n = min(n, total)
    return np.unique(((np.arange(n) + 0.5) * total / n).astype(np.int64))


def _per_document(classes: np.ndarray, weights: np.ndarray, cu: np.ndarray) -> dict[str, np.ndarray]:
    d = len(cu) - 1
    lengths = np.diff(cu)
    doc = np.repeat(np.arange(d), lengths)
    counts = np.bincount(doc * N_CLASSES + classes.astype(np.int64), minlength=d * N_CLASSES).reshape(d, N_CLASSES)
    cols = {name: counts[:, i] for i, name in enumerate(CLASS_COLUMNS)}
    first = classes[np.minimum(cu[:-1], max(len(classes) - 1, 0))] if len(classes) else np.zeros(d, dtype=np.uint8)
    for mode, table in MODE_TABLES.items():
        # A document's first token never gets loss (DESIGN.md, 'Weight semantics').
        sup = counts @ (table > 0).astype(np.int64) - ((table[first] > 0) & (lengths > 0))
        cols[f"supervised_{mode}"] = sup
    cols["weight_sum"] = np.bincount(doc, weights=weights.astype(np.float64), minlength=d)
    return cols


def scan(folder: CompiledFolder, *, samples: int) -> ScanResult:
    total_docs = sum(s.documents or 0 for s in folder.manifest.shards)
    wanted = set(sample_positions(total_docs, samples).tolist())
    image_id = folder.image_token_id
    parts: list[pl.DataFrame] = []
    chosen: list[PackedDocument] = []
    seen = 0
    for shard in folder.shard_names:
        rows: dict[str, list] = {"file": [], "images": []}
        arrays: list[dict[str, np.ndarray]] = []
        for m in folder.members(shard):
            metas = m.documents()
            classes, weights, cu = m.array("classes"), m.array("weights"), m.array("cu_seqlens")
            arrays.append(_per_document(classes, weights, cu))
            rows["file"] += [d.file for d in metas]
            rows["images"] += [d.images for d in metas]
            hits = [i for i in range(len(metas)) if seen + i in wanted]
            if hits:
                docs = ShardSequence.load(m).documents(image_id)
                chosen += [docs[i] for i in hits]
            seen += len(metas)
        if not arrays:
            continue
        frame = pl.DataFrame({**rows, **{k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]}})
        parts.append(_aggregate(frame.with_columns(documents=pl.lit(1, dtype=pl.Int64))))
    if parts:
        by_source = _aggregate(pl.concat(parts)).sort("file")
    else:
        by_source = pl.DataFrame(schema={"file": pl.String, "documents": pl.Int64, "images": pl.Int64,
                                         **{c: pl.Int64 for c in CLASS_COLUMNS}, "supervised_vit": pl.Int64,
                                         "supervised_lit": pl.Int64, "weight_sum": pl.Float64})
    by_source = by_source.with_columns(tokens=pl.sum_horizontal(CLASS_COLUMNS))
    return ScanResult(by_source=by_source, samples=chosen)


def _aggregate(frame: pl.DataFrame) -> pl.DataFrame:
    value_cols = ["documents", "images", *CLASS_COLUMNS, "supervised_vit", "supervised_lit", "weight_sum"]
    return frame.group_by("file").agg(pl.col(c).sum() for c in value_cols)
