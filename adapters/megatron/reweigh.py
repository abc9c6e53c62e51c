"""Re-weighing at load time: one compiled dataset serves LIT, VIT and custom per-class weights.

The shards store each token's class (uint8), so the loader can recompute the float weights without
recompiling: `weights = class_weights(mode, overrides)[classes]`, with weight 0 on every document's
first token (DESIGN.md, 'Weight semantics': nothing in the document predicts it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from litdata.classes import TokenClass, class_weights, parse_weight_overrides, weight_table
from litdata.weigh import weigh_sequence


@dataclass(frozen=True, kw_only=True)
class Reweigh:
    """`Reweigh(mode="vit")`, or `Reweigh(mode="lit", overrides={TokenClass.INSTRUCTION: 0.3})`."""

    mode: str = "lit"
    overrides: Mapping[TokenClass, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Keys may be TokenClass or class names; validate now (harmful > 0 is refused), not at the first batch.
        overrides = {
            k if isinstance(k, TokenClass) else TokenClass.parse(k): float(v) for k, v in self.overrides.items()
        }
        object.__setattr__(self, "overrides", MappingProxyType(overrides))
        table = weight_table(class_weights(self.mode, overrides))
        object.__setattr__(self, "_table", table)

    @classmethod
    def from_cli(cls, mode: str = "lit", weights: list[str] | None = None) -> Reweigh:
        """From `--mode vit` and `--weight instruction=0.3 ...` style strings."""
        return cls(mode=mode, overrides=MappingProxyType(parse_weight_overrides(weights)))

    @property
    def table(self) -> np.ndarray:
        """float32 weight per class id."""
        return self._table  # type: ignore[attr-defined]

    def apply(self, classes: np.ndarray, cu_seqlens: np.ndarray) -> np.ndarray:
        """float32 weights for one packed sequence."""
        return weigh_sequence(classes, cu_seqlens[:-1], self.table)
