"""`fill_bins`' rule, stated plainly and checked against the optimised implementation on random inputs: each
bin takes the longest item left, then the subset of the items left (of lengths that fit) reaching the largest
sum up to the room, where the first subset found wins: lengths ascending, each length's copies split in binary
(1, 2, 4, ... of them), a sum's first reaching copy recorded once; items of a length go lowest index first."""

from __future__ import annotations

import random

import pytest

from litdata.pack.binpack import fill_bins


def reference_fill_bins(lengths: list[int], capacity: int, keep: int) -> tuple[list[list[int]], list[int]]:
    stacks: dict[int, list[int]] = {}
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], -i)):
        stacks.setdefault(lengths[i], []).append(i)
    counts = {n: len(idx) for n, idx in stacks.items()}
    left, bins = len(lengths), []
    while left > keep and left > 0:
        big = max(n for n, c in counts.items() if c)
        counts[big] -= 1
        room = capacity - big
        first: dict[int, int] = {0: -1}  # sum -> the copy that first reached it
        copies: list[tuple[int, int]] = []
        for n in sorted(n for n, c in counts.items() if c and n <= room):
            avail, k = min(counts[n], room // n), 1
            while avail > 0 and room not in first:
                t = min(k, avail)
                avail, k = avail - t, 2 * k
                for s in sorted(first):  # sums reached before this copy
                    if s + n * t <= room and s + n * t not in first:
                        first[s + n * t] = len(copies)
                copies.append((n, t))
            if room in first:
                break
        chosen, s = [big], max(first)
        while s > 0:
            n, t = copies[first[s]]
            counts[n] -= t
            chosen += [n] * t
            s -= n * t
        bins.append([stacks[n].pop() for n in chosen])
        left -= len(chosen)
    return bins, sorted(i for idx in stacks.values() for i in idx)


@pytest.mark.parametrize("seed", range(40))
def test_fill_bins_follows_its_rule(seed):
    rng = random.Random(seed)
    capacity = rng.choice([10, 64, 300, 2048])
    lengths = [rng.randint(1, capacity) if rng.random() < 0.3 else rng.randint(1, capacity // 8 + 1)
               for _ in range(rng.randint(0, 300))]
    keep = rng.choice([0, 0, 3, 40])
    assert fill_bins(lengths, capacity, keep=keep) == reference_fill_bins(lengths, capacity, keep)
