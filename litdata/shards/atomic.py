"""Every file litdata writes appears whole or not at all: it is written under a hidden temporary name in its own
folder (so that the rename stays on one file system), flushed to disk, then renamed over its final name. A
crash leaves at most the temporary, which `output.folder` knows as a leftover of its name (`.NAME.tmp`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


class AtomicFile:
    """The temporary of `path`, for writers that hold a file open across calls (the shard writer); the `with`
    forms below are for everyone else."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.temp = self.path.with_name(f".{self.path.name}.tmp")

    def commit(self) -> None:
        """fsync the temporary (through a descriptor of its own: the data may have been written by a library
        that closed its file) and rename it over `path`."""
        fd = os.open(self.temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        # An OSError here means there is no temporary to remove (e.g. the folder is a file); the caller's own
        # error, if any, is the one worth raising.
        with contextlib.suppress(OSError):
            self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_file(p) as tmp:` write tmp (any way: open, a parquet or sqlite writer); on leaving the block
    it becomes `p`, on an error it is removed and `p` is left as it was."""
    target = AtomicFile(path)
    target.discard()  # a killed run's leftover: some writers (sqlite) would append to it
    try:
        yield target.temp
        target.commit()
    except BaseException:
        target.discard()
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns `path`."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)
