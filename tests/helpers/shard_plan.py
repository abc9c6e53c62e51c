"""The shard-size rule's references, over lists: what the tests hold the streaming writers to."""

from __future__ import annotations

from collections.abc import Iterable

from litdata.pack.packer import PackedSequence
from litdata.shards.writer import ShardPlan, build_sample, sample_size


def sample_members(seq: PackedSequence) -> dict[str, bytes]:
    """Every member of the sample of `seq`, images read: what the size rule is defined over."""
    return build_sample(seq).read()


def plan_shards(sequences: Iterable[PackedSequence], *, max_bytes: int, max_sequences: int) -> list[range]:
    """The runs of sequence indices that the shards hold, in order: shard i holds sequences runs[i]."""
    plan = ShardPlan(max_bytes=max_bytes, max_sequences=max_sequences)
    runs: list[range] = []
    for i, seq in enumerate(sequences):
        if plan.add(sample_size(seq)) or not runs:
            runs.append(range(i, i + 1))
        else:
            runs[-1] = range(runs[-1].start, i + 1)
    return runs
