"""The Gilmore-Gomory cutting-stock LP relaxation of bin packing, solved by column generation.

One implementation serves two uses: `benchmarks/baselines/packing_bound.py` reports its lower bound (no packing
can use fewer bins), and `litdata.pack.binpack.lp_bins` packs from its primal solution (whole copies of the LP's
patterns, then a heuristic for the few items left over).

The bound is Farley's, sum(d * y) / max(1, best pattern value at y), for the best duals y seen: y scaled that way
is feasible for the dual of the full LP (no pattern prices above 1), so the bound holds even if the LP solver's
duals are slightly off. At convergence it is the LP optimum.

scipy (HiGHS) is optional: `pip install 'litdata-lit[lp]'`. It is imported only when an LP is solved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLUMNS_PER_ROUND = 20  # patterns added per pricing round: fewer rounds, each master LP re-solved from scratch
SCIPY_HINT = "the cutting-stock LP needs scipy: pip install 'litdata-lit[lp]'"


@dataclass(frozen=True)
class CuttingStockLP:
    kinds: np.ndarray  # the distinct lengths (> 0), ascending
    demand: np.ndarray  # items of each kind
    patterns: np.ndarray  # (patterns, kinds) counts: the final master's columns, each fitting the capacity
    x: np.ndarray  # the master's optimal value of each pattern (>= 0, possibly fractional)
    lp_value: float  # Farley's lower bound on the LP optimum, equal to it (up to solver tolerance) at convergence
    iterations: int  # pricing rounds (one knapsack each)


def _split(m: int) -> list[int]:
    """1, 2, 4, ..., rest: every count 0..m is a sum of a subset of these."""
    parts, k = [], 1
    while m > 0:
        parts.append(min(k, m))
        m, k = m - parts[-1], 2 * k
    return parts


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
    # Equal scores are common (the dual-optimal inequalities make the duals plateau). Ties go by a fixed scramble
    # of the kind index: the same on every machine (numpy's default argsort may order ties differently with SIMD),
    # and varied (ties by ascending index took 4x the pricing rounds on LLaVA-shaped lengths).
    scramble = (pos * 2654435761) % 2**32
    for i in pos[np.lexsort((scramble, -(y[pos] + dp[cap - lengths[pos]])))][: 2 * COLUMNS_PER_ROUND]:
        if y[i] + dp[cap - lengths[i]] <= 1 + 1e-9 or len(patterns) >= COLUMNS_PER_ROUND:
            break  # the rest would not improve the master
        pattern = walk(cap - int(lengths[i]))
        pattern[i] += 1
        if pattern[i] <= bounds[i] and not any(np.array_equal(pattern, q) for q in patterns):
            patterns.append(pattern)
    return float(dp[cap]), patterns


def solve_cutting_stock(
    kinds: np.ndarray, demand: np.ndarray, capacity: int, initial: np.ndarray | None = None, gap: float = 0.0
) -> CuttingStockLP:
    """min sum x_p s.t. sum_p x_p * pattern_p >= demand, x >= 0, over every pattern of `kinds` (distinct positive
    lengths, ascending, each <= capacity) that fits `capacity`.

    `initial`: count vectors of patterns to start from (each must fit; counts are clipped to the demand), e.g. the
    bins of a quick heuristic or of the previous window. Column generation starting from homogeneous patterns alone
    spends most of its rounds getting near a good packing; starting from one took 283 rounds down to 10-16 on
    65,536 LLaVA-shaped lengths. The optimum is the same (up to ties between optimal solutions).

    `gap`: stop once the master's objective is within `gap` of the best lower bound (0: solve to optimality).
    The returned x is then optimal for the final master only, which is a feasible LP solution within `gap` of
    the optimum."""
    try:
        from scipy.optimize import linprog
        from scipy.sparse import csc_matrix
    except ImportError as e:  # an optional extra: the default packers do not need it
        raise ImportError(SCIPY_HINT) from e

    kinds, demand = np.asarray(kinds, dtype=np.int64), np.asarray(demand, dtype=np.int64)
    n = len(kinds)
    if n == 0:
        return CuttingStockLP(kinds, demand, np.zeros((0, 0), dtype=np.int64), np.zeros(0), 0.0, 0)
    bounds = np.minimum(demand, capacity // kinds)  # no pattern holds more copies than exist or fit
    # Start: one homogeneous pattern per length (covers every demand).
    patterns: list[np.ndarray] = [np.eye(n, dtype=np.int64)[k] * bounds[k] for k in range(n)]
    seen: set[bytes] = {p.tobytes() for p in patterns}
    for p in initial if initial is not None else ():
        p = np.minimum(np.asarray(p, dtype=np.int64), bounds)
        if p.any() and p.tobytes() not in seen:
            seen.add(p.tobytes())
            patterns.append(p)
    rows, cols, vals = [], [], []
    for j, p in enumerate(patterns):
        nz = np.flatnonzero(p)
        rows += nz.tolist()
        cols += [j] * len(nz)
        vals += p[nz].tolist()
    # Master columns as sparse triplets: the patterns, then the dual-optimal inequalities (Ben Amor, Desrosiers,
    # Valerio de Carvalho 2006): a shorter item fits any slot of a longer one, so some optimal dual is nondecreasing
    # in length. Free columns "+1 shorter, -1 next longer" impose that on the master's duals: fewer rounds, same
    # LP optimum. They stay last so that column j < len(patterns) is pattern j.
    doi_rows, doi_vals = [r for k in range(n - 1) for r in (k, k + 1)], [1.0, -1.0] * (n - 1)
    best, center, iterations = 0.0, np.zeros(n), 0
    while True:
        m = len(patterns)
        doi_cols = [m + j // 2 for j in range(2 * (n - 1))]
        a = csc_matrix((vals + doi_vals, (rows + doi_rows, cols + doi_cols)), shape=(n, m + n - 1))
        costs = np.r_[np.ones(m), np.zeros(n - 1)]
        # min 1.x s.t. A x >= d, written -A x <= -d. The interior-point solver with crossover is ~3x faster than
        # simplex on these degenerate masters (re-solved from scratch every round), and crossover gives a vertex:
        # few fractional x, so few items left over when lp_bins rounds down.
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
            value, priced = _price(kinds, bounds, y, capacity)
            iterations += 1
            bound = float(demand @ y) / max(1.0, value)
            if bound > best:
                best, center = bound, y
            new = [p for p in priced if 1.0 - float(p @ duals) < -1e-9 and p.tobytes() not in seen]
            if new:
                break
        if not new:  # no new pattern has reduced cost < -1e-9 at the master's duals: the master is optimal
            break
        if res.fun - best <= gap:  # close enough for the caller; column generation's tail is long (tailing off)
            break
        for p in new:
            seen.add(p.tobytes())
            nz = np.flatnonzero(p)
            rows += nz.tolist()
            cols += [len(patterns)] * len(nz)
            vals += p[nz].tolist()
            patterns.append(p)
    return CuttingStockLP(kinds, demand, np.array(patterns), np.asarray(res.x[:m]), best, iterations)
