import os
from pathlib import Path

import pytest

from tests.helpers.compile import compile_cli

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> Path:
    """The bundled demo compiled once with default options (lit mode, vicuna_v1, seq 2048)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    assert compile_cli("demo", "--out", out, "--no-progress") == 0
    return out
