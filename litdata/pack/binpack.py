"""Bin packing over item lengths: best-fit decreasing, subset-sum fill, and rounding the cutting-stock LP.

Subset-sum fill: each sequence takes the longest document left, then the combination of the remaining
documents that fills the rest best (an exact bounded subset-sum over the length histogram, numpy bitsets).

Decreasing heuristics (best-fit, first-fit, greedy knapsack) end sequences early when documents are long and
alike: LLaVA-style data is mostly one image plus a short exchange (665 to 865 positions with the image
expanded), and placing the longest first leaves about 225 free positions per 4096 sequence (94.5%). Choosing
combinations that fill the room exactly reached 97.9% on the same documents (benchmarks/README.md, section 2).
Fill is still greedy, one sequence at a time; `lp_bins` plans all sequences of a window together from the LP
relaxation (litdata/pack/cutting_stock.py), whose optimum bounds every packing from below.
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
    counts = [0] * (capacity + 1)  # items left per length
    for n, idx in stacks.items():
        counts[n] = len(idx)
    present = sorted(stacks)  # the lengths with items left, ascending
    left = len(lengths)
    bins: list[list[int]] = []
    while left > keep and left > 0:
        big = present[-1]
        counts[big] -= 1
        if not counts[big]:
            present.pop()
        chosen = [big]
        room = capacity - big
        # 0/1 knapsack over binary-split copies of each length. Sets of reachable sums are Python ints used as
        # bitsets (bit s: sum s), far cheaper than numpy arrays at these sizes. after[c] is the set once copy c
        # is added; the sets only grow, so the copy that first reached s is found by bisection.
        # Sum `room` is reached when reach, kept below bit room + 1 by `sums`, has room + 1 bits: bit_length is
        # read without making a new int, as `reach & (1 << room)` makes one per copy.
        reach, sums, filled = 1, (2 << room) - 1, room + 1
        after: list[int] = []
        copies: list[tuple[int, int]] = []  # (length, how many)
        for n in present[: bisect.bisect_right(present, room)]:
            avail = min(counts[n], room // n)
            if avail == 1:  # most lengths of a long-document window: one copy, no binary split
                reach |= (reach << n) & sums
                after.append(reach)
                copies.append((n, 1))
            else:
                k = 1
                while avail > 0 and reach.bit_length() < filled:
                    t = min(k, avail)
                    avail, k = avail - t, 2 * k
                    reach |= (reach << n * t) & sums
                    after.append(reach)
                    copies.append((n, t))
            if reach.bit_length() == filled:
                break
        s = reach.bit_length() - 1
        while s > 0:
            lo, hi = 0, len(after) - 1
            while lo < hi:  # the first c with s in after[c]
                mid = (lo + hi) // 2
                lo, hi = (lo, mid) if after[mid] >> s & 1 else (mid + 1, hi)
            c = lo
            n, t = copies[c]
            counts[n] -= t
            if not counts[n]:
                present.pop(bisect.bisect_left(present, n))
            chosen += [n] * t
            s -= n * t
        bins.append([stacks[n].pop() for n in chosen])
        left -= len(chosen)
    rest = sorted(i for idx in stacks.values() for i in idx)
    return bins, rest


def lp_bins(lengths: Sequence[int], capacity: int, *, keep: int = 0,
            initial: Sequence[Sequence[int]] = ()) -> tuple[list[list[int]], list[int]]:  # fmt: skip
    """`fill_bins`' contract, planned by the cutting-stock LP (litdata/pack/cutting_stock.py): floor(x_p) copies of each
    LP pattern p, each slot given an item of its length, or else the longest shorter one left (lowest index
    first; a slot with none left stays empty), then the items left over: into the room of those bins (best-fit
    decreasing), then `fill_bins(..., keep=keep)`. `initial`: bins as lists of lengths (e.g. the previous window's)
    to start column generation from; it changes the time, not the LP optimum.

    Rounding down leaves about one bin's worth of items per fractional pattern, and the LP optimum is a lower
    bound on any packing, so on many items of few distinct lengths this ends within a few bins of the optimum.
    Needs scipy (the `lp` extra). Deterministic for a given scipy/HiGHS: ties go to the lower index.
    """
    from litdata.pack.cutting_stock import solve_cutting_stock

    if len(lengths) and max(lengths) > capacity:
        raise ValueError(f"an item is longer ({max(lengths)}) than the capacity {capacity}")
    stacks: dict[int, list[int]] = {}
    for i in range(len(lengths) - 1, -1, -1):
        stacks.setdefault(int(lengths[i]), []).append(i)  # popped from the end: lowest index first
    kinds = sorted(n for n in stacks if n > 0)  # zero-length items go into any room afterwards
    column = {n: k for k, n in enumerate(kinds)}
    # Start columns: best-fit decreasing's bins (0.02 s per 8,192 items; halves the rounds) and `initial`.
    starts = [[lengths[i] for i in b] for b in best_fit_decreasing(lengths, capacity)] + [list(b) for b in initial]
    start = np.zeros((len(starts), len(kinds)), dtype=np.int64)
    for r, b in enumerate(starts):
        if sum(b) <= capacity and all(n in column for n in b if n > 0):
            for n in (n for n in b if n > 0):
                start[r, column[n]] += 1
    # gap 1: a plan within one bin of the LP optimum is enough (rounding down loses more), and the last bin's worth
    # of column generation is most of its rounds where lengths are many and each is rare.
    lp = solve_cutting_stock(np.array(kinds, dtype=np.int64), np.array([len(stacks[n]) for n in kinds]), capacity,
                             start[start.any(axis=1)], gap=1.0)  # fmt: skip
    # Slots, longest first. The LP's dual-optimal inequalities let a pattern's slot of length n stand for any
    # shorter item (the LP cover is then of "at least this long" slots): giving each slot the longest item that
    # fits, longest slots first, places as many items as any assignment can.
    slots: list[tuple[int, int]] = []  # (-length, bin)
    copies = 0
    for pattern, x in zip(lp.patterns, lp.x):
        for _ in range(int(np.floor(x + 1e-6))):  # 1e-6: an integral x the solver returns as 2.9999999
            slots += [(-kinds[k], copies) for k in np.flatnonzero(pattern) for _ in range(int(pattern[k]))]
            copies += 1
    bins: dict[int, list[int]] = {}
    avail = list(kinds)
    for neg, b in sorted(slots):
        j = bisect.bisect_right(avail, -neg) - 1
        if j >= 0:
            bins.setdefault(b, []).append(stacks[avail[j]].pop())
            if not stacks[avail[j]]:
                avail.pop(j)
    placed = [bins[b] for b in sorted(bins)]
    left = sorted(i for idx in stacks.values() for i in idx)
    # Capacity 0: an item that fits no bin's room opens a bin of its own that no other item fits (its room is
    # negative), so exactly the items in bins past the first len(placed) found no room.
    rooms = [capacity - sum(lengths[i] for i in b) for b in placed]
    into = best_fit_decreasing([lengths[i] for i in left], 0, free=rooms)
    for b, idx in zip(placed, into):
        b.extend(left[j] for j in idx)
    left = sorted(left[j] for idx in into[len(placed) :] for j in idx)
    more, rest = fill_bins([lengths[i] for i in left], capacity, keep=keep)
    return placed + [[left[j] for j in b] for b in more], [left[j] for j in rest]
