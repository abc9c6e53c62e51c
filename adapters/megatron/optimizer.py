"""AdamW with float32 main parameters and gradients for a bf16/fp16 model, as Megatron trains one.

A bf16 weight near 0.02 has a resolution of about 1e-4, the size of one Adam update at a typical learning rate, so
updating bf16 weights in place silently drops most updates once the learning rate decays. Megatron keeps
float32 "main" copies of low-precision parameters and accumulates their gradients in float32 (its arguments
turn `accumulate_allreduce_grads_in_fp32` on for bf16); its optimizer classes and DDP buffers are built for CUDA
only, and ours must also train (and resume) on CPU, so this is the same scheme on top of `torch.optim.AdamW`:

- every low-precision parameter gets a float32 main copy and a float32 gradient buffer; a post-accumulate-grad
  hook adds each backward's gradient into the buffer and frees the bf16 one (gradient accumulation over
  micro-batches happens in float32);
- data-parallel reduction and clipping act on those buffers (`gradients()`), AdamW steps the main copies, and
  the result is cast back into the model's parameters;
- float32 parameters (the CPU test models) are stepped directly: for them this is plain AdamW.

Weight decay skips 1-D parameters (norm scales, biases), as Megatron's default parameter groups do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn


class MixedPrecisionAdamW:
    def __init__(self, model: nn.Module, *, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.low = [p for p in self.params if p.dtype != torch.float32]
        self.main_of: dict[Tensor, nn.Parameter] = {p: nn.Parameter(p.detach().float().clone()) for p in self.low}
        self.main_grad: dict[Tensor, Tensor] = {p: torch.zeros_like(self.main_of[p]) for p in self.low}
        self._hooks = [p.register_post_accumulate_grad_hook(self._accumulate) for p in self.low]
        stepped = [self.main_of.get(p, p) for p in self.params]
        self.model_of: dict[Tensor, Tensor] = {m: p for p, m in zip(self.params, stepped)}
        groups = [
            {"params": [m for m in stepped if m.dim() > 1], "weight_decay": weight_decay},
            # wd_mult: Megatron's OptimizerParamScheduler sets weight_decay = wd x wd_mult on every group.
            {"params": [m for m in stepped if m.dim() <= 1], "weight_decay": 0.0, "wd_mult": 0.0},
        ]
        # The fused CUDA kernel steps all tensors at once; on CPU torch picks its own implementation.
        fused = bool(stepped) and stepped[0].is_cuda
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps,
                                           fused=fused or None)

    def _accumulate(self, p: Tensor) -> None:
        self.main_grad[p].add_(p.grad)
        p.grad = None

    def remove_hooks(self) -> None:
        """Stop taking the model's gradients (before handing the model to another optimizer)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    def keeps_main_grad(self, p: Tensor) -> bool:
        return p in self.main_grad

    def gradients(self) -> list[tuple[Tensor, Tensor]]:
        """(model parameter, its gradient) for the reduction and clipping: the float32 buffer of a low-precision
        parameter (always present), the `.grad` of a float32 one (absent when it got none)."""
        return [(p, self.main_grad[p]) if p in self.main_grad else (p, p.grad)
                for p in self.params if p in self.main_grad or p.grad is not None]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None
        if self.main_grad:
            torch._foreach_zero_(list(self.main_grad.values()))

    @torch.no_grad()
    def step(self) -> None:
        for p, main in self.main_of.items():
            main.grad = self.main_grad[p]
        self.optimizer.step()
        if self.low:
            torch._foreach_copy_(self.low, [self.main_of[p] for p in self.low])  # cast back to bf16/fp16

    def state_dict(self) -> dict[str, Any]:
        # The main copies are state too: re-deriving them from the bf16 weights on resume would round them.
        return {"optimizer": self.optimizer.state_dict(), "main_params": [self.main_of[p] for p in self.low]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        mains = state["main_params"]
        if len(mains) != len(self.low):
            raise ValueError(f"checkpoint holds {len(mains)} float32 main parameters, the model has {len(self.low)} "
                             "low-precision ones: saved with another model or precision")
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_mains(zip(self.low, mains))

    @torch.no_grad()
    def _restore_mains(self, saved: Iterable[tuple[Tensor, Tensor]]) -> None:
        """Main copies from a checkpoint, and the model's weights as their rounding."""
        for p, main in saved:
            self.main_of[p].copy_(main)
            p.copy_(main)

    def _model_params_in_optimizer_order(self) -> list[Tensor]:
        return [self.model_of[m] for group in self.optimizer.param_groups for m in group["params"]]

    def _init_state(self) -> None:
        """AdamW creates its state on the first step; loading into it needs the tensors to exist."""
        for group in self.optimizer.param_groups:
            for m in group["params"]:
                if not self.optimizer.state[m]:
                    step = torch.zeros((), dtype=torch.float32, device=m.device if group.get("fused") else "cpu")
                    self.optimizer.state[m] = {"step": step, "exp_avg": torch.zeros_like(m),
                                               "exp_avg_sq": torch.zeros_like(m)}

    def sharded_state_dict(self, model_sharded_state_dict: dict, is_loading: bool = False) -> dict[str, Any]:
        """The state as Megatron `dist_checkpointing` tensors sharded like the model's parameters (as Megatron's
        FP32Optimizer does it), so that a run saved at one TP/DP layout resumes at another. `is_loading`: the
        structure to load into (state tensors allocated first)."""
        from megatron.core.dist_checkpointing.optimizer import (
            get_param_id_to_sharded_param_map,
            make_sharded_optimizer_tensor,
            optim_state_to_sharding_state,
        )

        if is_loading:
            self._init_state()
        state = self.optimizer.state_dict()
        order = self._model_params_in_optimizer_order()
        sharded = get_param_id_to_sharded_param_map(model_sharded_state_dict, order)
        steps = {float(s["step"]) for s in state["state"].values()}
        if len(steps) > 1:
            raise ValueError(f"optimizer steps differ between parameters ({sorted(steps)}); cannot checkpoint")
        optim_state_to_sharding_state(state, sharded, exclude_keys=("step",))
        state["state"]["common_step"] = steps.pop() if steps else 0.0
        index = {p: i for i, p in enumerate(order)}
        state["main_params"] = {index[p]: make_sharded_optimizer_tensor(sharded[index[p]], self.main_of[p],
                                                                         prefix="optimizer.main_param")
                                for p in self.low}
        return state

    @torch.no_grad()
    def load_sharded_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from what `dist_checkpointing.load` returned for `sharded_state_dict(..., is_loading=True)`."""
        step = state["state"].pop("common_step")
        for s in state["state"].values():
            s["step"] = torch.tensor(float(step), dtype=torch.float32)
        order = self._model_params_in_optimizer_order()
        mains = state.pop("main_params")
        self.optimizer.load_state_dict(state)
        self._restore_mains((order[int(i)], saved) for i, saved in mains.items())
