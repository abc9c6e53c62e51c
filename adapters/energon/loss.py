"""The weighted loss for Megatron-LM's multimodal example: `sum(w * ce) / sum(w)` with float weights.

The example's `loss_func` multiplies the per-token losses by a float mask but hands Megatron the mask's sum
cast to int (`loss[1].to(torch.int)`), and Megatron divides by that: with fractional weights (lambda = 0.3
on instruction tokens) the divisor is truncated, and a micro-batch whose weights sum to less than 1 is divided
by 0 clamped to 1. `weighted_loss` returns what Megatron-Core's schedule needs in each of its two modes:
- default (per micro-batch): Megatron divides the loss by `num_tokens` and by the number of micro-batches, so we
  return the already weight-normalised loss with `num_tokens = 1`: each micro-batch's loss is its weighted mean,
  averaged over micro-batches and data-parallel ranks, as the example does with 0/1 masks;
- `--calculate-per-token-loss`: Megatron sums `num_tokens` over micro-batches and data-parallel ranks in an
  int32 tensor and divides the gradients by that sum, so the weight sum travels in fixed point (units of
  1/WEIGHT_SCALE) and the loss is scaled by the same factor: the gradient is that of the global
  `sum(w * ce) / sum(w)` up to the rounding of each micro-batch's weight sum to 1/WEIGHT_SCALE.
The reported 'lm loss' pair is (weighted loss sum, weight sum), so Megatron's log shows the weighted mean.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

# Fixed-point unit of the weight sum under --calculate-per-token-loss. int32 then holds a weight sum of up to
# 2**31 / 256 = 8.4M over one optimizer step (micro-batches x data-parallel ranks): 8.4M supervised tokens at weight 1.
WEIGHT_SCALE = 256


def weighted_loss(
    loss_mask: torch.Tensor,
    output_tensor: torch.Tensor,
    *,
    calculate_per_token_loss: bool = False,
    cp_group: dist.ProcessGroup | None = None,
    dp_group: dist.ProcessGroup | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Drop-in for the example's `loss_func(loss_mask, output_tensor)` body; `loss_mask` holds the float weights
    (in the model's image-expanded space, as LLaVAModel returns it). The groups are given when they have more
    than one rank: context parallel sums the pair first, data parallel only the reported pair."""
    losses = output_tensor.float().reshape(-1)
    weights = loss_mask.contiguous().reshape(-1).float()
    pair = torch.stack([torch.sum(losses * weights), weights.sum()])
    if cp_group is not None:
        dist.all_reduce(pair, group=cp_group)
    reported = pair.clone().detach()
    if dp_group is not None:
        dist.all_reduce(reported, group=dp_group)
    log = {"lm loss": (reported[0], reported[1])}
    if calculate_per_token_loss:
        units = torch.round(pair[1].detach() * WEIGHT_SCALE).to(torch.int)
        return pair[0] * WEIGHT_SCALE, units, log
    # A micro-batch without supervised tokens contributes 0 (its weighted sum is 0 too), not 0 / 0.
    mean = pair[0] / torch.clamp(pair[1].detach(), min=torch.finfo(torch.float32).tiny)
    return mean, torch.ones((), dtype=torch.int, device=mean.device), log
