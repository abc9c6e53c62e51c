"""The few CPU-only patches Megatron-Core needs to run our tests without a GPU.

Applied by `apply()` only when `torch.cuda.is_available()` is False; on a GPU `apply()` does nothing, so
none of this is on the GPU path. What needs patching, and why (megatron-core 0.16.1 and 0.19.2):
1. `pipeline_parallel.schedules` creates its token counter with `torch.zeros(..., device="cuda")`
   (forward_backward_no_pipelining and the pipelined schedules). We give that module a `torch` proxy whose
   `zeros` maps a CUDA device to the CPU; every other attribute is the real torch.
2. `tensor_parallel.model_parallel_cuda_manual_seed` seeds CUDA generators; on CPU `seed()` in train.py
   uses `torch.manual_seed` instead (the CPU model is initialised with `use_cpu_initialization=True`, which
   draws full master weights from the CPU generator and splits them, identical for any TP size).
3. `dist_checkpointing`'s torch_dist save (`FileSystemWriterAsync.preload_tensors`) copies tensors to the
   host with `non_blocking=True` and then calls `torch.cuda.synchronize()`; on CPU we force the blocking
   copy, which skips the synchronize. Its finalize step (`state_dict_saver`) all-reduces a flag on
   `torch.cuda.current_device()`: that module gets the same `torch` proxy, whose `cuda.current_device()`
   answers "cpu".
4. megatron-core 0.19's `LLaVAModel.forward` builds its empty sound-embedding placeholder on
   `torch.cuda.current_device()` when no sound clips are given: `llava_model` gets the same proxy.
Not needed here, because our modules avoid them: Megatron's `RotaryEmbedding.get_emb` (moves `inv_freq` to
CUDA; `DocumentRotaryEmbedding` computes its own), the global memory buffer (only used with sequence
parallelism, which we leave off), and the CUDA RNG tracker (only forked for attention dropout, which the
local-spec replacement `DocumentAttention` does not route through it).
"""

from __future__ import annotations

import types
from typing import Any

import torch

_APPLIED = False


class _CpuTorch(types.ModuleType):
    """`torch` for one Megatron module: identical except that `zeros(device="cuda")` lands on the CPU."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    class _Cuda:
        """torch.cuda, except that the current device is the CPU."""

        @staticmethod
        def current_device() -> str:
            return "cpu"

        def __getattr__(self, name: str) -> Any:
            return getattr(torch.cuda, name)

    cuda = _Cuda()

    @staticmethod
    def zeros(*args: Any, device: Any = None, **kwargs: Any) -> torch.Tensor:
        if device is not None and torch.device(device).type == "cuda":
            device = "cpu"
        return torch.zeros(*args, device=device, **kwargs)


def apply() -> bool:
    """Install the CPU patches once; returns True when they are active."""
    global _APPLIED
    if torch.cuda.is_available():
        return False
    if not _APPLIED:
        from megatron.core.pipeline_parallel import schedules

        schedules.torch = _CpuTorch()

        from megatron.core.dist_checkpointing.strategies import filesystem_async, state_dict_saver

        state_dict_saver.torch = _CpuTorch()

        from megatron.core.models.multimodal import llava_model

        llava_model.torch = _CpuTorch()

        writer = filesystem_async.FileSystemWriterAsync
        preload = writer.preload_tensors
        writer.preload_tensors = staticmethod(lambda buckets, non_blocking=True: preload(buckets, False))
        _APPLIED = True
    return True
