"""Loss weights from token classes (DESIGN.md, 'Weight semantics')."""

from __future__ import annotations

import numpy as np


def weigh(classes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """weights[i] weighs predicting token i from the tokens before it in the same document, so the first token
    of a document, which nothing in the document predicts, always gets 0."""
    weights = table[classes]
    if weights.shape[0]:
        weights[0] = 0.0
    return weights


def supervised_count(classes: np.ndarray, table: np.ndarray) -> int:
    """Tokens with a non-zero weight under `table` (the document's first token excluded, as in `weigh`)."""
    if classes.shape[0] <= 1:
        return 0
    return int(np.count_nonzero(table[classes[1:]]))


def weigh_sequence(classes: np.ndarray, starts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`weigh` for documents packed into one sequence: `table[classes]` with 0 at each document start
    (`cu_seqlens[:-1]`). The compiler's rule, recomputed by `litdata verify` and by loaders that re-weigh."""
    weights = table[classes]
    weights[starts] = 0.0
    return weights
