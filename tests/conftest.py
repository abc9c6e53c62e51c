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


def pytest_sessionfinish(session, exitstatus):
    """Megatron tests start a one-rank gloo group in this process; destroy it while the interpreter is whole, since
    gloo's teardown at exit can abort the process (pytorch/pytorch#190489) and turn a green run red."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
