"""A proven lower bound on the sequences ANY packer needs for given document lengths, hence an upper bound on
the packing efficiency any packer can reach: the Gilmore-Gomory cutting-stock LP relaxation of bin packing,
solved by column generation in `litdata/pack/cutting_stock.py` (the same solver `--packing lp` packs from).

The bound reported is Farley's (see litdata/pack/cutting_stock.py): it holds even if the LP solver's duals are
slightly off, and at convergence it is the LP optimum.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from litdata.pack.cutting_stock import solve_cutting_stock


@dataclass(frozen=True)
class LowerBound:
    lp_value: float  # a lower bound on the LP optimum (Farley's), equal to it once converged
    sequences: int  # the integer lower bound: max(ceil(lp_value), volume)
    volume: int  # the simple bound ceil(total length / capacity), for comparison
    columns: int  # patterns in the final master LP
    iterations: int  # pricing rounds (one knapsack each)
    seconds: float
    rounding: int  # lengths were rounded down to a multiple of this many tokens


def min_sequences_lower_bound(lengths: np.ndarray, capacity: int, rounding: int = 1) -> LowerBound:
    """Lower bound on the bins of size `capacity` needed to hold every item of `lengths`, each whole in one bin."""
    t0 = time.perf_counter()
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and lengths.max() > capacity:
        raise ValueError(f"an item is longer ({lengths.max()}) than the capacity {capacity}")
    if (len(lengths) and lengths.min() < 0) or rounding < 1:
        raise ValueError("lengths must be >= 0 and rounding >= 1")
    volume = math.ceil(int(lengths.sum()) / capacity)
    # Rounding every length down (and the capacity down to whole units, which loses nothing once all lengths are
    # multiples of the unit) only shrinks items: every packing of the real items is one of the rounded items,
    # so a lower bound for the rounded problem is one for the real problem. Zero-unit items fit anywhere.
    units = lengths // rounding
    kinds, demand = np.unique(units[units > 0], return_counts=True)
    cap = capacity // rounding
    if len(kinds) == 0:
        sequences = max(volume, int(len(lengths) > 0))  # zero-length items still need a sequence
        return LowerBound(0.0, sequences, volume, 0, 0, time.perf_counter() - t0, rounding)
    lp = solve_cutting_stock(kinds, demand, cap)
    best = lp.lp_value
    # Converged: each pattern holds <= cap, so the LP is at least the volume bound (of the rounded lengths:
    # with rounding > 1 it may fall below the real lengths' volume bound, hence the max below).
    assert best >= int(kinds @ demand) / cap * (1 - 1e-9) - 1e-6, (best, int(kinds @ demand) / cap)
    lp_int = math.ceil(best - 1e-6)  # 1e-6: floating-point error in a value that may be integral exactly
    return LowerBound(best, max(lp_int, volume), volume, len(lp.patterns), lp.iterations,
                      time.perf_counter() - t0, rounding)  # fmt: skip
