"""Packing algorithms users would pick instead of litdata's windowed best-fit decreasing.

All take item lengths (image tokens already expanded) and return bins as lists of item indices.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np


def search_for_fit(numbers: Sequence[int], capacity: int) -> int:
    """Index of the largest number that fits into `capacity`, -1 if none does."""
    index = bisect.bisect(numbers, capacity)
    return -1 if index == 0 else (index - 1)


def greedy_knapsack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Greedy knapsack with binary search, as in LLaMA-Factory
    (src/llamafactory/data/processor/processor_utils.py `greedy_knapsack`) and Megatron-LM
    (examples/multimodal/data_loading/knapsacks.py `greedy_knapsack`, which carries the samples along):
    sort ascending; fill one knapsack at a time with the largest item that still fits, until none does.
    Ported line by line, carrying indices instead of samples as Megatron's version does."""
    if len(lengths) == 0:
        return []
    if max(lengths) > capacity:
        raise ValueError(f"knapsack: a sample is larger ({max(lengths)}) than the capacity {capacity}")
    pairs = sorted(zip(lengths, range(len(lengths))), key=lambda x: x[0])
    sorted_sizes = [p[0] for p in pairs]
    sorted_samples = [p[1] for p in pairs]
    knapsacks = []
    while sorted_sizes:
        current_knapsack = []
        remaining_capacity = capacity
        while True:
            idx = search_for_fit(sorted_sizes, remaining_capacity)
            if idx == -1:
                break
            remaining_capacity -= sorted_sizes[idx]
            sorted_sizes.pop(idx)
            current_knapsack.append(sorted_samples.pop(idx))
        knapsacks.append(current_knapsack)
    return knapsacks


def greedy_knapsack_buffered(lengths: Sequence[int], capacity: int, buffer: int) -> list[list[int]]:
    """Megatron-Energon packs within a buffer of `--packing-buffer-size` samples at a time: greedy knapsack per
    consecutive buffer, nothing carried over."""
    bins: list[list[int]] = []
    for start in range(0, len(lengths), buffer):
        part = greedy_knapsack(lengths[start : start + buffer], capacity)
        bins.extend([[start + i for i in b] for b in part])
    return bins


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Plain first-fit decreasing over everything at once: each item, longest first, goes into the oldest bin
    with room. A max segment tree over the bins' free space finds that bin in O(log bins)."""
    n = len(lengths)
    if n == 0:
        return []
    if max(lengths) > capacity:
        raise ValueError(f"ffd: an item is larger ({max(lengths)}) than the capacity {capacity}")
    size = 1
    while size < n:
        size *= 2
    tree = [capacity] * (2 * size)  # every leaf starts as an empty bin; bins are opened left to right
    bins: list[list[int]] = []
    for i in sorted(range(n), key=lambda i: -lengths[i]):
        need = lengths[i]
        node = 1
        while node < size:  # descend to the leftmost leaf with free >= need
            node = 2 * node if tree[2 * node] >= need else 2 * node + 1
        leaf = node - size
        if leaf == len(bins):
            bins.append([])
        bins[leaf].append(i)
        tree[node] -= need
        node //= 2
        while node:
            tree[node] = max(tree[2 * node], tree[2 * node + 1])
            node //= 2
    return bins


def no_packing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """One record per sequence, padded to `capacity`."""
    if len(lengths) and max(lengths) > capacity:
        raise ValueError(f"an item is larger ({max(lengths)}) than the capacity {capacity}")
    return [[i] for i in range(len(lengths))]


def efficiency(lengths: Sequence[int], bins: list[list[int]], capacity: int) -> float:
    """Real tokens / (sequences x capacity)."""
    if not bins:
        return 0.0
    return float(np.sum(np.asarray(lengths, dtype=np.int64))) / (len(bins) * capacity)


def check_bins(lengths: Sequence[int], bins: list[list[int]], capacity: int) -> None:
    """Every item placed exactly once and no bin over capacity (raises AssertionError otherwise)."""
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(len(lengths))), "items lost or placed twice"
    over = [k for k, b in enumerate(bins) if sum(lengths[i] for i in b) > capacity]
    assert not over, f"{len(over)} bins over capacity {capacity}, first: {over[0]}"


def subset_sum_fill(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """litdata's fill algorithm (`litdata/pack/binpack.py`) over the whole dataset at once, without windows: how much of
    the gap to 100% is the decreasing heuristics' and how much the length distribution's."""
    from litdata.pack.binpack import fill_bins

    return fill_bins(lengths, capacity)[0]
