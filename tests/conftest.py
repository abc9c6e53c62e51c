import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def compile_cli(*args) -> int:
    from litdata.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> Path:
    """The bundled demo compiled once with default options (lit mode, vicuna_v1, seq 2048)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    assert compile_cli("demo", "--out", out, "--no-progress") == 0
    return out


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
