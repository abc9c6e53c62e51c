"""Faults injected into Ray tasks, in a module Ray's workers can import (`tests.helpers`, not a test module)."""

from __future__ import annotations

import os
from pathlib import Path


def write_shard_dying_once(out_dir: str, index: int, first_key: int, seqs) -> object:
    """`write_shard`, except that the first attempt at shard 1 kills its worker process halfway through the
    shard (a temporary holding one sample is left behind); a marker file next to --out says it already died."""
    from litdata.shards.writer import _ShardFile, write_shard

    marker = Path(out_dir).parent / "died-once"
    if index == 1 and not marker.exists():
        marker.touch()
        _ShardFile(Path(out_dir), index).write(first_key, seqs[0])
        os._exit(1)
    return write_shard(Path(out_dir), index, first_key, seqs)


def write_shard_on_another_disk(out_dir: str, index: int, first_key: int, seqs) -> object:
    """`write_shard` as a worker on another node without a shared file system would run it: into a folder of
    the same path on its own disk (here: a sibling folder the driver does not look at)."""
    from litdata.shards.writer import write_shard

    elsewhere = Path(f"{out_dir}-elsewhere")
    elsewhere.mkdir(exist_ok=True)
    return write_shard(elsewhere, index, first_key, seqs)
