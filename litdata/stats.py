"""Counters of a compile: every record ends up counted exactly once, as a document or as a reject."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.pack.packer import PackedSequence
from litdata.records import Document, Reject

_CLASSES = len(TokenClass)
# The classes each mode supervises (a non-zero weight), as 0/1 columns (vit, lit): a document's supervised counts
# are its class histogram times these, less its first token (never weighted), which is `supervised_count` for
# both modes from the one bincount the class totals need.
_SUPERVISED = np.stack([weight_table(class_weights(m)) != 0 for m in ("vit", "lit")], axis=1).astype(np.int64)


@dataclass
class CompileStats:
    seq_len: int
    records_read: int = 0
    documents: int = 0
    truncated: int = 0
    images: int = 0
    sequences: int = 0
    expanded_tokens: int = 0
    rejects: Counter = field(default_factory=Counter)
    tokens_by_class: np.ndarray = field(default_factory=lambda: np.zeros(len(TokenClass), dtype=np.int64))
    # Documents by the class of their first token, which nothing predicts (never supervised): the supervised counts
    # are the class totals less these, times _SUPERVISED, kept as totals rather than as a product per document.
    first_by_class: list[int] = field(default_factory=lambda: [0] * _CLASSES)
    weight_sum: float = 0.0
    harmful_hits: int = 0

    def add_reject(self, r: Reject) -> None:
        self.records_read += 1
        self.rejects[r.reason.value] += 1

    def add_document(self, d: Document) -> None:
        self.records_read += 1
        self.documents += 1
        self.truncated += d.truncated_from is not None
        self.images += len(d.images)
        counts = np.bincount(d.classes, minlength=_CLASSES)
        if counts.shape[0] > _CLASSES:
            raise ValueError(f"{d.provenance.describe()}: token class {counts.shape[0] - 1} is not a TokenClass")
        self.tokens_by_class += counts
        if d.classes.shape[0]:  # a one-token document supervises nothing: its token is its first
            self.first_by_class[d.classes[0]] += 1
        self.weight_sum += float(d.weights.sum(dtype=np.float64))

    @property
    def supervised_vit(self) -> int:
        return self._supervised()[0]

    @property
    def supervised_lit(self) -> int:
        return self._supervised()[1]

    def _supervised(self) -> list[int]:
        return ((self.tokens_by_class - np.array(self.first_by_class)) @ _SUPERVISED).tolist()

    def add_sequence(self, s: PackedSequence) -> None:
        self.sequences += 1
        self.expanded_tokens += s.length

    @property
    def packing_efficiency(self) -> float:
        return self.expanded_tokens / (self.sequences * self.seq_len) if self.sequences else 0.0

    def counts_json(self) -> dict:
        return {
            "records_read": self.records_read,
            "documents_written": self.documents,
            "rejected": sum(self.rejects.values()),
            "rejected_by_reason": dict(sorted(self.rejects.items())),
            "truncated": self.truncated,
            "images": self.images,
            "sequences": self.sequences,
            "harmful_spans": self.harmful_hits,
        }

    def tokens_json(self) -> dict:
        return {
            "by_class": {c.label: int(self.tokens_by_class[c]) for c in TokenClass},
            "total": int(self.tokens_by_class.sum()),
            "expanded_total": self.expanded_tokens,
            "supervised_vit": self.supervised_vit,
            "supervised_lit": self.supervised_lit,
            "weight_sum": round(self.weight_sum, 6),
        }
