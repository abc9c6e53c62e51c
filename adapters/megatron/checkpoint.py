"""Save and resume with Megatron-Core `dist_checkpointing`: model and optimizer resharded, loader per DP rank.

Layout of `DIR/iter_NNNNNNN/`:
- `dist/`: one `dist_checkpointing.save` of `{"model": model.sharded_state_dict(), "optimizer": ...}`. The
  optimizer's AdamW moments and float32 main weights are sharded like the parameters they belong to
  (`MixedPrecisionAdamW.sharded_state_dict`), so a run saved at one tensor-parallel size resumes at another.
- `dp_RRRRR.pt`: what belongs to data-parallel rank R (written by its first tensor-parallel rank): the loader's
  state (exact next sequence of that rank's share of the shards), the step, the learning-rate schedule, RNG.
  The loader's position cannot be re-split over another number of DP ranks, so resume needs the same DP size.
`DIR/latest` names the newest complete checkpoint (written last, so a crash mid-save keeps the previous one).
`dp_RRRRR.pt` holds only tensors and plain data and is read with `weights_only=True`: loading never runs code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from litdata.shards.atomic import atomic_write


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _ranks() -> tuple[int, int, int]:
    """(global rank, data-parallel rank, data-parallel size), also without a process group."""
    if not torch.distributed.is_initialized():
        return 0, 0, 1
    from megatron.core import parallel_state

    return (torch.distributed.get_rank(), parallel_state.get_data_parallel_rank(),
            parallel_state.get_data_parallel_world_size())


def _first_tp_rank() -> bool:
    if not torch.distributed.is_initialized():
        return True
    from megatron.core import parallel_state

    return parallel_state.get_tensor_model_parallel_rank() == 0


def _vocab_size(model: torch.nn.Module) -> int:
    """The padded vocabulary of a GPTModel or of LLaVAModel's language model."""
    return int(getattr(model, "language_model", model).vocab_size)


def _sharded(model: torch.nn.Module, optimizer: Any, *, is_loading: bool) -> dict:
    model_state = model.sharded_state_dict()
    return {"model": model_state, "optimizer": optimizer.sharded_state_dict(model_state, is_loading=is_loading)}


def save(root: str | os.PathLike, *, step: int, model: torch.nn.Module, optimizer: Any,
         loader_state: dict, extra: dict | None = None) -> Path:
    from megatron.core import dist_checkpointing

    rank, dp_rank, dp_size = _ranks()
    folder = Path(root) / f"iter_{step:07d}"
    (folder / "dist").mkdir(parents=True, exist_ok=True)
    _barrier()
    dist_checkpointing.save(_sharded(model, optimizer, is_loading=False), str(folder / "dist"))
    if _first_tp_rank():
        torch.save(
            {
                "step": step,
                "dp_size": dp_size,
                "vocab_size": _vocab_size(model),
                "loader": loader_state,
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "extra": extra or {},
            },
            folder / f"dp_{dp_rank:05d}.pt",
        )
    _barrier()
    if rank == 0:
        atomic_write(Path(root) / "latest", folder.name.encode())
    _barrier()
    return folder


def _load_rank_state(path: Path) -> dict[str, Any]:
    """A `dp_RRRRR.pt` with `weights_only=True`: tensors and plain containers only, so that a crafted file cannot
    run code on load (what `save` writes is exactly that: ints, strings, lists, dicts and RNG byte tensors)."""
    try:
        rest = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises weights_only=False; keep only the line that names what was refused.
        why = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line), type(e).__name__)
        raise ValueError(f"{path}: refused to load: it holds more than tensors and plain data ({why})") from None
    if not isinstance(rest, dict) or not {"step", "vocab_size", "loader", "rng", "extra"} <= rest.keys():
        raise ValueError(f"{path}: not a loader/step state written by checkpoint.save")
    return rest


def load(root: str | os.PathLike, *, model: torch.nn.Module, optimizer: Any) -> dict[str, Any]:
    """Restore model and optimizer in place from `root` (its `latest`) or one `root/iter_N` folder, at this
    run's TP size; returns {'step', 'loader', 'extra'} of this data-parallel rank."""
    from megatron.core import dist_checkpointing

    root = Path(root)
    if (root / "dist").is_dir():
        folder = root
    elif (root / "latest").is_file():
        folder = root / (root / "latest").read_text().strip()
    else:
        raise FileNotFoundError(f"{root}: neither a 'latest' file nor a 'dist' folder; not written by --save")
    _, dp_rank, dp_size = _ranks()
    own = folder / f"dp_{dp_rank:05d}.pt"
    saved_dp = len(list(folder.glob("dp_*.pt")))
    if saved_dp != dp_size or not own.is_file():
        raise ValueError(f"{folder}: saved with {saved_dp} data-parallel ranks, this run has {dp_size}; the loader's "
                         "position cannot be re-split (the tensor-parallel size may change, the DP size may not)")
    rest = _load_rank_state(own)
    if rest["vocab_size"] != _vocab_size(model):
        # dist_checkpointing would load the overlap of two differently padded embeddings without a word; the
        # extra logits change every softmax, so this would be another model.
        raise ValueError(f"{folder}: saved with a vocabulary padded to {rest['vocab_size']}, this model pads to "
                         f"{_vocab_size(model)}; set --make-vocab-size-divisible-by so that it x TP gives the same size")
    state = dist_checkpointing.load(_sharded(model, optimizer, is_loading=True), str(folder / "dist"))
    model.load_state_dict(state["model"])
    optimizer.load_sharded_state_dict(state["optimizer"])
    torch.set_rng_state(rest["rng"])
    if rest.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rest["cuda_rng"])
    return {"step": rest["step"], "loader": rest["loader"], "extra": rest["extra"]}
