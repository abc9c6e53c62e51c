"""The cutting-stock lower bound is a bound (never above the exact optimum, never beaten by a packer) and a
strong one (equal to the optimum where the LP is known to be tight, and on most small random instances)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.baselines.packing import (
    check_bins,
    first_fit_decreasing,
    greedy_knapsack,
    greedy_knapsack_buffered,
    no_packing,
    subset_sum_fill,
)
from benchmarks.baselines.packing_bound import min_sequences_lower_bound


def exact_min_bins(lengths: list[int], capacity: int) -> int:
    """Exact bin packing optimum by DP over subsets: best[S] = the fewest bins for the items of S, as
    (closed bins, fill of the open bin), lexicographically smallest. Items join the open bin or open a new one;
    any packing is reached by some order, so this is exact. O(2^n n), fine for n <= 14."""
    n = len(lengths)
    best: list[tuple[int, int]] = [(n + 1, 0)] * (1 << n)
    best[0] = (0, capacity)  # "open bin full": the first item opens a bin
    for mask in range(1 << n):
        closed, fill = best[mask]
        for i in range(n):
            if not mask >> i & 1:
                nxt = (closed, fill + lengths[i]) if fill + lengths[i] <= capacity else (closed + 1, lengths[i])
                best[mask | 1 << i] = min(best[mask | 1 << i], nxt)
    return best[-1][0]


def test_exact_solver_on_known_instances():
    assert exact_min_bins([50, 50, 50, 50], 100) == 2
    assert exact_min_bins([51, 51, 51], 100) == 3
    assert exact_min_bins([60, 40, 70, 30, 45, 55], 100) == 3
    assert exact_min_bins([34] * 7, 100) == 4  # two per bin: three bins of two, one of one


@pytest.mark.parametrize("rounding", [1, 4])
def test_bound_never_exceeds_the_optimum_and_is_mostly_tight(rounding):
    rng = np.random.default_rng(rounding)
    tight = 0
    for _ in range(40):
        capacity = int(rng.integers(80, 121))
        lengths = rng.integers(10, capacity + 1, size=int(rng.integers(8, 12))).tolist()
        optimum = exact_min_bins(lengths, capacity)
        b = min_sequences_lower_bound(np.array(lengths), capacity, rounding=rounding)
        assert b.sequences <= optimum, (lengths, capacity, b)
        assert b.lp_value <= optimum + 1e-6
        assert b.sequences >= math.ceil(sum(lengths) / capacity)
        tight += b.sequences == optimum
    # the LP bound of bin packing is almost always within one bin of the optimum and usually equal; the volume
    # bound alone is equal far less often on these instances, so a bound that degenerated to it fails here
    assert tight >= 30, tight


def test_bound_beats_the_volume_bound_when_items_cannot_share():
    b = min_sequences_lower_bound(np.array([51] * 10), 100)  # one per bin: volume says 6, optimum 10
    assert b.volume == 6 and b.sequences == 10 and abs(b.lp_value - 10) < 1e-6


@pytest.mark.parametrize(
    ("lengths", "capacity", "optimum"),
    [
        ([34] * 9, 100, 5),  # all equal: LP = 9/2 = 4.5 -> 5
        ([25] * 12, 100, 3),  # all equal, exactly filling
        ([60, 40] * 3 + [70, 30] * 2, 100, 5),  # pairs that exactly fill a bin
        ([50, 30, 20] * 4, 100, 4),
        ([7] * 13, 20, 7),  # two per bin (21 > 20): LP 6.5 -> 7
    ],
)
def test_bound_equals_the_optimum_where_the_lp_is_tight(lengths, capacity, optimum):
    assert exact_min_bins(lengths, capacity) == optimum
    assert min_sequences_lower_bound(np.array(lengths), capacity).sequences == optimum


def test_rounding_only_weakens():
    rng = np.random.default_rng(7)
    lengths = rng.integers(60, 400, size=1000)
    exact = min_sequences_lower_bound(lengths, 1000)
    for rounding in (2, 8):
        rounded = min_sequences_lower_bound(lengths, 1000, rounding=rounding)
        assert rounded.rounding == rounding and rounded.lp_value <= exact.lp_value + 1e-6
        assert rounded.sequences <= exact.sequences


def test_item_longer_than_capacity_raises():
    with pytest.raises(ValueError, match="longer"):
        min_sequences_lower_bound(np.array([10, 101]), 100)


def test_empty_and_zero_length():
    assert min_sequences_lower_bound(np.array([], dtype=np.int64), 100).sequences == 0
    assert min_sequences_lower_bound(np.array([0, 0]), 100).sequences == 1
    assert min_sequences_lower_bound(np.array([3, 3, 3]), 100, rounding=4).sequences == 1  # volume bound


@pytest.mark.parametrize("capacity", [2048, 4096])
def test_no_packer_beats_the_bound(capacity):
    # the benchmark's shape: image documents around 700-900 tokens plus some long text-only ones
    rng = np.random.default_rng(capacity)
    lengths = np.concatenate([rng.integers(665, 866, size=1800), rng.integers(289, 1479, size=200)]).tolist()
    b = min_sequences_lower_bound(np.array(lengths), capacity)
    packers = [greedy_knapsack, first_fit_decreasing, no_packing, subset_sum_fill,
               lambda L, c: greedy_knapsack_buffered(L, c, 500)]  # fmt: skip
    for packer in packers:
        bins = packer(list(lengths), capacity)
        check_bins(lengths, bins, capacity)
        assert len(bins) >= b.sequences, (packer, len(bins), b)
    assert b.sequences > b.volume  # the instance is one where the LP says more than the volume
