"""Bin packing over item lengths: best-fit decreasing, and subset-sum fill.

Subset-sum fill: each sequence takes the longest document left, then the combination of the remaining
documents that fills the rest best (an exact bounded subset-sum over the length histogram, numpy bitsets).

Decreasing heuristics (best-fit, first-fit, greedy knapsack) end sequences early when documents are long and
alike: LLaVA-style data is mostly one image plus a short exchange (665 to 865 positions with the image
expanded), and placing the longest first leaves about 225 free positions per 4096 sequence (94.5%). Choosing
combinations that fill the room exactly reached 97.9% on the same documents (benchmarks/README.md, section 2).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np


def best_fit_decreasing(lengths: Sequence[int], capacity: int, free: Sequence[int] = ()) -> list[list[int]]:
    """Item indices per bin, longest item first, each into the fullest bin it fits. `free` gives the room left
    in bins already open; they come first in the result (possibly without new items). Ties break by item
    index and by bin age, so the result is deterministic."""
    bins: list[list[int]] = [[] for _ in free]
    keys = sorted((f, b) for b, f in enumerate(free))  # (room left, bin number), kept sorted
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        need = lengths[i]
        j = bisect.bisect_left(keys, (need, -1))
        if j < len(keys):
            room, b = keys.pop(j)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        bisect.insort(keys, (room - need, b))
    return bins


def fill_bins(lengths: Sequence[int], capacity: int, *, keep: int = 0) -> tuple[list[list[int]], list[int]]:
    """Pack item indices into bins of `capacity`, stopping once no more than `keep` items are left unplaced.

    Returns (bins, the unplaced indices). Deterministic: ties go to the lower index.
    """
    if len(lengths) and max(lengths) > capacity:
        raise ValueError(f"an item is longer ({max(lengths)}) than the capacity {capacity}")
    stacks: dict[int, list[int]] = {}
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], -i)):
        stacks.setdefault(int(lengths[i]), []).append(i)  # popped from the end: lowest index first
    counts = np.zeros(capacity + 1, dtype=np.int64)
    for n, idx in stacks.items():
        counts[n] = len(idx)
    left = len(lengths)
    bins: list[list[int]] = []
    while left > keep and left > 0:
        big = int(np.flatnonzero(counts)[-1])
        counts[big] -= 1
        chosen = [big]
        room = capacity - big
        # 0/1 knapsack over binary-split copies of each length; parent[s] = the copy that first reached sum s.
        reach = np.zeros(room + 1, dtype=bool)
        reach[0] = True
        parent = np.full(room + 1, -1, dtype=np.int64)
        copies: list[tuple[int, int]] = []  # (length, how many)
        for n in np.flatnonzero(counts[: room + 1]):
            avail, k = min(int(counts[n]), room // int(n)), 1
            while avail > 0 and not reach[room]:
                t = min(k, avail)
                w = int(n) * t
                avail, k = avail - t, 2 * k
                newly = np.zeros(room + 1, dtype=bool)
                newly[w:] = reach[: room + 1 - w]
                newly &= ~reach
                parent[newly] = len(copies)
                reach |= newly
                copies.append((int(n), t))
            if reach[room]:
                break
        s = int(np.flatnonzero(reach)[-1])
        while s > 0:
            n, t = copies[parent[s]]
            counts[n] -= t
            chosen += [n] * t
            s -= n * t
        bins.append([stacks[n].pop() for n in chosen])
        left -= len(chosen)
    rest = sorted(i for idx in stacks.values() for i in idx)
    return bins, rest
