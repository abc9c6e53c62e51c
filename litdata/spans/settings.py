"""Settings records for template mining and harmful-span detection (built by options.py or by hand)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

HarmfulPolicy = Literal["mask", "drop"]
HARMFUL_POLICIES: tuple[str, ...] = ("mask", "drop")

# Planted templates appear in >= 2% of the records of the demo data and of a LLaVA-665K-like mix, ordinary
# sentences in <= 0.5%. A cut at 1% leaves a factor of two on both sides. The count floor keeps small
# corpora honest: in 200 records 1% is 2 records, and two coincidences do not make a template.
DEFAULT_MIN_FRAC = 0.01
DEFAULT_MIN_COUNT = 5
DEFAULT_CHUNK_SIZE = 5000


@dataclass(frozen=True, kw_only=True, slots=True)
class MiningSettings:
    """How template shapes are chosen. User lists hold *shapes* (see shapes.sentence_shape) and apply even
    when mining is disabled; a shape on the not-templates list is never a template."""

    enabled: bool = True
    min_frac: float = DEFAULT_MIN_FRAC
    min_count: int = DEFAULT_MIN_COUNT
    top_k: int | None = None  # also mark the k most frequent shapes (still subject to min_count)
    user_templates: frozenset[str] = frozenset()
    user_not_templates: frozenset[str] = frozenset()
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        if not (0.0 <= self.min_frac <= 1.0) or math.isnan(self.min_frac):
            raise ValueError(f"--template-min-frac must be between 0 and 1, got {self.min_frac}")
        if self.min_count < 1:
            raise ValueError(f"--template-min-count must be >= 1, got {self.min_count}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"--template-top-k must be >= 1, got {self.top_k}")
        if self.chunk_size < 1:
            raise ValueError(f"mining chunk size must be >= 1, got {self.chunk_size}")
        both = self.user_templates & self.user_not_templates
        if both:
            raise ValueError(f"shape listed both as template and as not-template: {min(both)!r}")

    def to_dict(self) -> dict:
        return {
            "enabled": self.enabled,
            "min_frac": self.min_frac,
            "min_count": self.min_count,
            "top_k": self.top_k,
            "user_templates": sorted(self.user_templates),
            "user_not_templates": sorted(self.user_not_templates),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class HarmfulSettings:
    """How harmful spans are found. The policy is applied by the pipeline: `mask` gives matched sentences
    class harmful (weight 0), `drop` rejects the record with reason `harmful`."""

    phrases: tuple[str, ...] = ()  # lexicon phrases (default list and user file), matched case-insensitively
    lexicon_files: tuple[str, ...] = ()  # where the phrases came from, for the manifest
    model_path: str | None = None  # local Hugging Face text-classification model
    threshold: float = 0.5
    harmful_label: str | None = None  # model label that means harmful; None: guessed (harmful/toxic/unsafe/LABEL_1)
    policy: HarmfulPolicy = "mask"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.policy not in HARMFUL_POLICIES:
            raise ValueError(f"--harmful must be one of {', '.join(HARMFUL_POLICIES)}, got {self.policy!r}")
        if not (0.0 <= self.threshold <= 1.0) or math.isnan(self.threshold):
            raise ValueError(f"--harmful-threshold must be between 0 and 1, got {self.threshold}")
        if self.batch_size < 1:
            raise ValueError(f"harmful model batch size must be >= 1, got {self.batch_size}")

    @property
    def active(self) -> bool:
        return bool(self.phrases) or self.model_path is not None

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "lexicon_files": list(self.lexicon_files),
            "lexicon_phrases": len(self.phrases),
            "model": self.model_path,
            "threshold": self.threshold,
            "harmful_label": self.harmful_label,
        }
