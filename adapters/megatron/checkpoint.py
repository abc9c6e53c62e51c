"""Save and resume: the model with Megatron-Core `dist_checkpointing`, the rest per rank beside it.

Layout of `DIR/iter_NNNNNNN/`:
- `model/`: `dist_checkpointing.save(model.sharded_state_dict(), ...)`: TP-sharded tensors, loadable at another
  TP size;
- `rank_RRRRR.pt`: this rank's optimizer state, loader state (exact next sequence), step and RNG states.
The optimizer is `MixedPrecisionAdamW` (optimizer.py), not Megatron's `DistributedOptimizer`: that needs
Megatron's DDP gradient buffers, which are built for CUDA, and we must resume on CPU in tests. Its state (AdamW
moments and the float32 main parameters) matches this rank's parameter shards, so it is saved per rank and
needs the same TP/DP layout to resume.
`DIR/latest` names the newest complete checkpoint (written last, so a crash mid-save keeps the previous one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def save(root: str | os.PathLike, *, step: int, model: torch.nn.Module, optimizer: Any,
         loader_state: dict, extra: dict | None = None) -> Path:
    from megatron.core import dist_checkpointing

    folder = Path(root) / f"iter_{step:07d}"
    (folder / "model").mkdir(parents=True, exist_ok=True)
    _barrier()
    dist_checkpointing.save(model.sharded_state_dict(), str(folder / "model"))
    torch.save(
        {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "loader": loader_state,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "extra": extra or {},
        },
        folder / f"rank_{_rank():05d}.pt",
    )
    _barrier()
    if _rank() == 0:
        tmp = Path(root) / "latest.tmp"
        tmp.write_text(folder.name)
        tmp.replace(Path(root) / "latest")
    _barrier()
    return folder


def load(root: str | os.PathLike, *, model: torch.nn.Module, optimizer: Any) -> dict[str, Any]:
    """Restore model and optimizer in place from `root` (its `latest`) or one `root/iter_N` folder;
    returns {'step', 'loader', 'extra'}."""
    from megatron.core import dist_checkpointing

    root = Path(root)
    if (root / "model").is_dir():
        folder = root
    elif (root / "latest").is_file():
        folder = root / (root / "latest").read_text().strip()
    else:
        raise FileNotFoundError(f"{root}: neither a 'latest' file nor a 'model' folder; not written by --save")
    state = dist_checkpointing.load(model.sharded_state_dict(), str(folder / "model"))
    model.load_state_dict(state)
    own = folder / f"rank_{_rank():05d}.pt"
    if not own.is_file():
        raise FileNotFoundError(f"{own}: missing; resume needs the same number of ranks as the saved run")
    rest = torch.load(own, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(rest["optimizer"])
    torch.set_rng_state(rest["rng"])
    if rest.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rest["cuda_rng"])
    return {"step": rest["step"], "loader": rest["loader"], "extra": rest["extra"]}
