"""A checkpoint's per-rank state is loaded with `weights_only=True` (issue 12, item 6): a crafted `dp_RRRRR.pt`
whose pickle would run a command is refused with one clear error, and the command never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from adapters.megatron import checkpoint


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Model(torch.nn.Module):
    vocab_size = 128


def _checkpoint(root: Path, rank_state: dict) -> Path:
    folder = root / "iter_0000007"
    (folder / "dist").mkdir(parents=True)
    torch.save(rank_state, folder / "dp_00000.pt")
    (root / "latest").write_text(folder.name)
    return folder


def _state(**extra) -> dict:
    return {"step": 7, "dp_size": 1, "vocab_size": 128, "loader": {"format": "litdata-loader-state"},
            "rng": torch.get_rng_state(), "cuda_rng": None, "extra": {"scheduler": {"max_lr": 1e-3}}, **extra}


def test_a_checkpoint_with_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    folder = _checkpoint(tmp_path / "ckpt", _state(extra={"scheduler": _RunsACommand(marker)}))
    with pytest.raises(ValueError, match=r"dp_00000\.pt: refused to load: .*GLOBAL posix\.system") as err:
        checkpoint.load(tmp_path / "ckpt", model=_Model(), optimizer=None)
    assert str(folder) in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_the_state_save_writes_loads_under_weights_only(tmp_path):
    """What `save` puts in dp_RRRRR.pt (ints, strings, dicts, the RNG byte tensor) needs no allow-list."""
    folder = _checkpoint(tmp_path / "ckpt", _state())
    rest = checkpoint._load_rank_state(folder / "dp_00000.pt")
    assert rest["step"] == 7 and torch.equal(rest["rng"], torch.get_rng_state())
    assert rest["extra"] == {"scheduler": {"max_lr": 1e-3}}
