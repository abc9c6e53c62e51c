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
