"""The compile configuration: `CompileConfig` and the settings records it nests, each default written once.

The command line (litdata/commands/) builds a CompileConfig and reads its option defaults from the fields here
(`default_of`), so a default changed here changes `--help` and the CLI with it. Only light imports: the argument
parser imports this module, and `litdata --help` must not pay for spaCy, torch or polars (tests/commands/test_startup.py).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from litdata.classes import TokenClass, class_weights
from litdata.images.tokens import FixedRule, ImageTokenRule

Overflow = Literal["drop", "truncate"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop", "truncate")
PackingAlgorithm = Literal["fill", "best-fit", "lp"]
PACKING_ALGORITHMS: tuple[PackingAlgorithm, ...] = ("fill", "best-fit", "lp")
HarmfulPolicy = Literal["mask", "drop"]
HARMFUL_POLICIES: tuple[HarmfulPolicy, ...] = ("mask", "drop")


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass field `cls.name`, for option defaults and help texts (slotted dataclasses keep
    no class attribute holding it)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            raise TypeError(f"{cls.__name__}.{name} has no default")
    raise AttributeError(f"{cls.__name__} has no field {name!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReadLimits:
    """Per-record limits the readers enforce, so that one pathological record cannot stall or exhaust a run."""

    max_turns: int = 512
    max_turn_chars: int = 200_000
    max_images: int = 64
    # The raw JSON text of one record (a JSONL line or a JSON array element). Bounds the reader's memory: a
    # record this large is skipped without being held and rejected as record_too_large.
    max_record_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ReadLimits.{f.name} must be a positive integer, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class MiningSettings:
    """How template shapes are chosen. User lists hold *shapes* (see spans/shapes.sentence_shape) and apply even
    when mining is disabled; a shape on the not-templates list is never a template."""

    enabled: bool = True
    # Planted templates appear in >= 2% of the records of the demo data and of a LLaVA-665K-like mix, ordinary
    # sentences in <= 0.5%. A cut at 1% leaves a factor of two on both sides. The count floor keeps small
    # corpora honest: in 200 records 1% is 2 records, and two coincidences do not make a template.
    min_frac: float = 0.01
    min_count: int = 5
    top_k: int | None = None  # also mark the k most frequent shapes (still subject to min_count)
    user_templates: frozenset[str] = frozenset()
    user_not_templates: frozenset[str] = frozenset()
    chunk_size: int = 5000

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
    class harmful (weight 0), `drop` rejects the record with reason `harmful`. The default finds nothing; the
    command line adds the bundled lexicon unless told not to (--no-default-harmful-lexicon)."""

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


@dataclass(frozen=True, kw_only=True)
class PackSettings:
    """What the packers (litdata/pack/packer.py) need; the pipeline builds it from a CompileConfig."""

    seq_len: int
    image_tokens: int  # per image, for documents without per-image counts
    # lp solves one LP per window at a fixed cost (about 1 s at seq_len 4096 once warm): larger windows are faster
    # and slightly tighter for it, but every document of a window is held in memory.
    window: int = 8192
    carry: int = 256
    seed: int = 0
    algorithm: PackingAlgorithm = "fill"

    def __post_init__(self) -> None:
        if self.algorithm not in PACKING_ALGORITHMS:
            raise ValueError(f"unknown packing {self.algorithm!r} (valid: {', '.join(PACKING_ALGORITHMS)})")


@dataclass(frozen=True, kw_only=True)
class CompileConfig:
    """Everything `litdata compile` is told. The field names and values are the output folder's run key
    (pipeline._run_key): renaming one makes an interrupted compile unresumable by the next version."""

    sources: tuple[str, ...]
    out: Path | str  # a str only for a URL (Path() would turn s3://b/x into s3:/b/x)
    tokenizer: str
    image_root: str | None = None
    template: str = "vicuna_v1"
    seq_len: int = 2048
    image_tokens: int = 576  # every image's count when `image_token_rule` is None (576: CLIP ViT-L/14 at 336px)
    image_token_rule: ImageTokenRule | None = None  # a rule that is not fixed (tiles, processor)
    mode: str = "lit"  # litdata.classes.MODES
    weight_overrides: dict[TokenClass, float] = field(default_factory=dict)
    overflow: Overflow = "drop"
    workers: int = 1
    seed: int = PackSettings.seed
    overwrite: bool = False
    max_shard_bytes: int = 256 * 2**20
    max_shard_sequences: int = 10_000
    max_pixels: int = 40_000_000
    max_image_bytes: int = 64 * 2**20
    read_limits: ReadLimits = field(default_factory=ReadLimits)
    mining: MiningSettings = field(default_factory=MiningSettings)
    harmful: HarmfulSettings = field(default_factory=HarmfulSettings)
    batch_size: int = 256
    pack_window: int = PackSettings.window
    packing: PackingAlgorithm = PackSettings.algorithm
    progress: bool = True
    # The local engine keeps what its first pass read (mining) for its second (encoding) when holding every record
    # is estimated to take at most this many bytes (litdata/read/twopass.py: about 2x the size of JSON sources, 8x
    # of Parquet); larger inputs are read twice. A resource like `workers`: it changes no output byte.
    first_pass_memory: int = 1 << 30

    def __post_init__(self) -> None:
        class_weights(self.mode, self.weight_overrides)  # an unknown mode or a bad override: ValueError now

    @property
    def weights(self) -> dict[TokenClass, float]:
        return class_weights(self.mode, self.weight_overrides)

    @property
    def rule(self) -> ImageTokenRule:
        return self.image_token_rule if self.image_token_rule is not None else FixedRule(tokens=self.image_tokens)
