"""Engines that run a compile's data passes somewhere other than this process's worker pool.

The local engine lives in litdata/pipeline.py (a process pool). `ray_engine.RayEngine` runs the same
per-record functions as Ray tasks over fixed partitions (`partitions.py`), for clusters.
"""

from __future__ import annotations

ENGINES = ("local", "ray")


class EngineError(RuntimeError):
    """The engine could not run the job: the cluster is unreachable, or a partition failed for good."""
