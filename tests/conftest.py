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
