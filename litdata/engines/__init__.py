"""Engines that run a compile's data passes somewhere other than this process's worker pool.

The local engine lives in litdata/pipeline.py (a process pool). `ray_engine.RayEngine` runs the same
per-record functions as Ray tasks over fixed partitions (`partitions.py`), for clusters.
"""

from __future__ import annotations

from typing import Any

ENGINES = ("local", "ray")


class EngineError(RuntimeError):
    """The engine could not run the job: the cluster is unreachable, or a partition failed for good."""


def ray_result(ray: Any, ref: Any, what: str, *, retries: int, passed_on: tuple[type[Exception], ...]) -> Any:
    """`ray.get(ref)`, a failed task raised as the local engine raises the same failure: a `passed_on` error as
    itself (an OSError rebuilt from its errno, strerror and filename, any other from its message), anything else
    as an EngineError naming `what`, e.g. "partition ..." or "writing shard-000003.tar"."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, passed_on):
            if isinstance(cause, OSError):
                raise OSError(cause.errno, cause.strerror, cause.filename) from None
            raise type(cause)(str(cause)) from None
        raise EngineError(f"{what} failed: {type(cause).__name__}: {cause}") from None
    except ray.exceptions.RayError as e:  # worker or node lost more often than max_retries, ...
        raise EngineError(f"{what} failed after {retries} retries: {str(e).splitlines()[0]}") from None
