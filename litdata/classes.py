"""Token classes and the loss weight each training mode gives them (DESIGN.md, 'Token classes')."""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType


class TokenClass(IntEnum):
    MARKUP = 0
    SYSTEM = 1
    IMAGE = 2
    TASK_TEMPLATE = 3
    INSTRUCTION = 4
    RESPONSE = 5
    HARMFUL = 6

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> TokenClass:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            valid = ", ".join(c.label for c in cls)
            raise ValueError(f"unknown token class {name!r} (valid: {valid})") from None


MODES = ("lit", "vit")

_MODE_WEIGHTS: Mapping[str, Mapping[TokenClass, float]] = MappingProxyType(
    {
        "vit": MappingProxyType({c: (1.0 if c is TokenClass.RESPONSE else 0.0) for c in TokenClass}),
        "lit": MappingProxyType(
            {c: (1.0 if c in (TokenClass.RESPONSE, TokenClass.INSTRUCTION) else 0.0) for c in TokenClass}
        ),
    }
)


def class_weights(mode: str, overrides: Mapping[TokenClass, float] | None = None) -> dict[TokenClass, float]:
    """The weight of every class for `mode`, with per-class overrides applied.

    Harmful spans never get loss: LIT teaches the model to produce instructions, so a harmful span
    with weight > 0 would train the model to write it (LIT.md, 'Harmful instructions').
    """
    if mode not in _MODE_WEIGHTS:
        raise ValueError(f"unknown mode {mode!r} (valid: {', '.join(MODES)})")
    weights = dict(_MODE_WEIGHTS[mode])
    for cls, w in (overrides or {}).items():
        if not math.isfinite(w) or w < 0.0:
            raise ValueError(f"weight for {cls.label} must be a finite number >= 0, got {w}")
        if cls is TokenClass.HARMFUL and w != 0.0:
            raise ValueError("harmful spans always have weight 0; use --harmful drop to remove such records")
        weights[cls] = float(w)
    return weights


def parse_weight_overrides(items: list[str] | None) -> dict[TokenClass, float]:
    """Parse `CLASS=W` strings such as `instruction=0.5`."""
    out: dict[TokenClass, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--weight expects CLASS=W, got {item!r}")
        try:
            w = float(value)
        except ValueError:
            raise ValueError(f"--weight {item!r}: {value!r} is not a number") from None
        out[TokenClass.parse(name)] = w
    return out


def weight_table(weights: Mapping[TokenClass, float]):
    """A float32 lookup table indexed by class id, for vectorised weighing."""
    import numpy as np

    table = np.zeros(len(TokenClass), dtype=np.float32)
    for cls, w in weights.items():
        table[int(cls)] = w
    return table
