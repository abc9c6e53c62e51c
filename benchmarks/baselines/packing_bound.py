"""A proven lower bound on the sequences ANY packer needs for given document lengths, hence an upper bound on
the packing efficiency any packer can reach: the Gilmore-Gomory cutting-stock LP relaxation of bin packing,
solved by column generation.

The bound reported is Farley's, sum(d * y) / max(1, best pattern value at y), for the best duals y seen: y
scaled that way is feasible for the dual of the full LP (no pattern prices above 1), so the bound holds even
if the LP solver's duals are slightly off or the loop stops early. At convergence it is the LP optimum.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csc_matrix

COLUMNS_PER_ROUND = 20  # patterns added per pricing round: fewer rounds, each master LP re-solved from scratch


@dataclass(frozen=True)
class LowerBound:
    lp_value: float  # a lower bound on the LP optimum (Farley's), equal to it once converged
    sequences: int  # the integer lower bound: max(ceil(lp_value), volume)
    volume: int  # the simple bound ceil(total length / capacity), for comparison
    columns: int  # patterns in the final master LP
    iterations: int  # pricing rounds (one knapsack each)
    seconds: float
    rounding: int  # lengths were rounded down to a multiple of this many tokens


def _price(lengths: np.ndarray, bounds: np.ndarray, y: np.ndarray, cap: int) -> tuple[float, list[np.ndarray]]:
    """Bounded knapsack max y.a s.t. lengths.a <= cap, 0 <= a <= bounds, integer: a 0-1 DP over capacity on
    binary-split multiplicities (1, 2, 4, ..., rest), one vectorised numpy step per split. Returns the optimum
    and the optimal pattern followed by up to COLUMNS_PER_ROUND - 1 others: for the kinds i with the best
    y_i + dp[cap - l_i], one i plus the best pattern of the remaining room (also read from the DP table)."""
    pieces = [(i, k) for i in np.flatnonzero(y > 0) for k in _split(int(bounds[i]))]  # zero duals add nothing
    dp = np.zeros(cap + 1)  # dp[c]: best value with total length <= c
    take = np.zeros((len(pieces), cap + 1), dtype=bool)
    for p, (i, k) in enumerate(pieces):
        w = k * int(lengths[i])
        cand = dp[: cap + 1 - w] + k * y[i]  # a copy of the previous row, so each piece is taken at most once
        take[p, w:] = cand > dp[w:]
        np.maximum(dp[w:], cand, out=dp[w:])

    def walk(c: int) -> np.ndarray:  # the pattern behind dp[c], reading the choices backwards
        pattern = np.zeros(len(lengths), dtype=np.int64)
        for p in range(len(pieces) - 1, -1, -1):
            if take[p, c]:
                pattern[pieces[p][0]] += pieces[p][1]
                c -= pieces[p][1] * int(lengths[pieces[p][0]])
        return pattern

    patterns = [walk(cap)]
    pos = np.flatnonzero(y > 0)
    for i in pos[np.argsort(-(y[pos] + dp[cap - lengths[pos]]))][: 2 * COLUMNS_PER_ROUND]:
        if y[i] + dp[cap - lengths[i]] <= 1 + 1e-9 or len(patterns) >= COLUMNS_PER_ROUND:
            break  # the rest would not improve the master
        pattern = walk(cap - int(lengths[i]))
        pattern[i] += 1
        if pattern[i] <= bounds[i] and not any(np.array_equal(pattern, q) for q in patterns):
            patterns.append(pattern)
    return float(dp[cap]), patterns


def _split(m: int) -> list[int]:
    """1, 2, 4, ..., rest: every count 0..m is a sum of a subset of these."""
    parts, k = [], 1
    while m > 0:
        parts.append(min(k, m))
        m, k = m - parts[-1], 2 * k
    return parts


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
    cap, n = capacity // rounding, len(kinds)
    if n == 0:
        sequences = max(volume, int(len(lengths) > 0))  # zero-length items still need a sequence
        return LowerBound(0.0, sequences, volume, 0, 0, time.perf_counter() - t0, rounding)
    bounds = np.minimum(demand, cap // kinds)  # no pattern holds more copies than exist or fit
    # Master columns as sparse triplets. Start: one homogeneous pattern per length (covers every demand).
    rows, cols, vals, costs = list(range(n)), list(range(n)), bounds.astype(float).tolist(), [1.0] * n
    # Dual-optimal inequalities (Ben Amor, Desrosiers, Valerio de Carvalho 2006): a shorter item fits any slot of
    # a longer one, so some optimal dual is nondecreasing in length. Free columns "+1 shorter, -1 next longer"
    # impose that on the master's duals: fewer rounds, same LP optimum.
    for k in range(n - 1):
        rows += [k, k + 1]
        cols += [n + k] * 2
        vals += [1.0, -1.0]
        costs.append(0.0)
    seen: set[bytes] = set()
    best, center, iterations = 0.0, np.zeros(n), 0
    while True:
        a = csc_matrix((vals, (rows, cols)), shape=(n, len(costs)))
        # min 1.x s.t. A x >= d, written -A x <= -d. The interior-point solver (with crossover) is ~3x faster
        # than simplex on these degenerate masters, which linprog re-solves from scratch every round.
        res = linprog(costs, A_ub=-a, b_ub=-demand.astype(float), bounds=(0, None), method="highs-ipm")
        if res.status != 0:
            raise RuntimeError(f"master LP failed: {res.message}")
        # marginals = d objective / d b_ub <= 0 on the -A x <= -d rows; the >= rows' duals are their negation
        duals = np.maximum(-res.ineqlin.marginals, 0.0)
        new: list[np.ndarray] = []
        # Wentges smoothing: price first halfway between the master's duals and the best duals so far (damps
        # their oscillation); only if that yields no column improving the master, price at its duals themselves.
        for alpha in (0.5, 0.0) if best > 0 else (0.0,):
            y = alpha * center + (1 - alpha) * duals
            value, patterns = _price(kinds, bounds, y, cap)
            iterations += 1
            bound = float(demand @ y) / max(1.0, value)
            if bound > best:
                best, center = bound, y
            new = [p for p in patterns if 1.0 - float(p @ duals) < -1e-9 and p.tobytes() not in seen]
            if new:
                break
        if not new:  # no new pattern has reduced cost < -1e-9 at the master's duals: the master is optimal
            break
        for p in new:
            seen.add(p.tobytes())
            nz = np.flatnonzero(p)
            rows += nz.tolist()
            cols += [len(costs)] * len(nz)
            vals += p[nz].tolist()
            costs.append(1.0)
    # Converged: each pattern holds <= cap, so the LP is at least the volume bound (of the rounded lengths:
    # with rounding > 1 it may fall below the real lengths' volume bound, hence the max below).
    assert best >= int(kinds @ demand) / cap * (1 - 1e-9) - 1e-6, (best, int(kinds @ demand) / cap)
    lp_int = math.ceil(best - 1e-6)  # 1e-6: floating-point error in a value that may be integral exactly
    return LowerBound(best, max(lp_int, volume), volume, len(costs) - (n - 1), iterations,
                      time.perf_counter() - t0, rounding)  # fmt: skip
