"""Running the CLI in-process and reading a shard back, for the tests."""

from __future__ import annotations

from pathlib import Path


def compile_cli(*args) -> int:
    from litdata.cli import main

    return main([str(a) for a in args])


def read_samples(shard: Path) -> list[dict]:
    """Every sample of a shard: {member suffix: np.ndarray for npy, bytes otherwise}, in order."""
    import io
    import tarfile

    import numpy as np

    samples: dict[str, dict] = {}
    with tarfile.open(shard) as tar:
        for m in tar.getmembers():
            key, _, suffix = m.name.partition(".")
            data = tar.extractfile(m).read()
            samples.setdefault(key, {"__key__": key})[suffix] = (
                np.load(io.BytesIO(data), allow_pickle=False) if suffix.endswith(".npy") else data)
    return list(samples.values())
