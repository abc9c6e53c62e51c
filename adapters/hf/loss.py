"""The LIT loss on Hugging Face logits: `sum(w * ce) / sum(w)`, the weight sum taken over a whole optimizer step.

`labels` and `loss_weights` are aligned with `input_ids` (transformers' convention): the logits at position `i`
predict `labels[i + 1]` with weight `loss_weights[i + 1]`, the same shift the model's own causal-LM loss applies.
A micro-batch contributes `weighted_ce_sum / step_weight_sum`, where the denominator covers every micro-batch of the
optimizer step on every data-parallel rank; summing the micro-batch losses (and averaging gradients over ranks,
after multiplying by the rank count) then gives exactly the weighted mean of the whole step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def weighted_ce_sum(logits: torch.Tensor, labels: torch.Tensor, loss_weights: torch.Tensor) -> torch.Tensor:
    """sum over predicted positions of weight * cross-entropy, in float32 (logits [..., T, V], the rest [..., T])."""
    shift_logits = logits[..., :-1, :].float()
    shift_labels = labels[..., 1:].to(logits.device)
    shift_weights = loss_weights[..., 1:].to(device=logits.device, dtype=torch.float32)
    ce = F.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                         ignore_index=IGNORE_INDEX, reduction="none")
    return (ce * shift_weights.reshape(-1)).sum()


def weight_sum(batches: Iterable[Mapping[str, Any]]) -> torch.Tensor:
    """The weight of every prediction in `batches` (float64 on CPU, so that the sum does not depend on order)."""
    total = torch.zeros((), dtype=torch.float64)
    for batch in batches:
        total += batch["loss_weights"][..., 1:].detach().to("cpu", torch.float64).sum()
    return total


def normalised(weighted_sum: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """weighted_sum / denominator, and 0 (with a graph, so backward still runs) when a step has no weight at all."""
    denominator = denominator.to(device=weighted_sum.device, dtype=weighted_sum.dtype)
    if bool(denominator <= 0):
        return weighted_sum * 0.0
    return weighted_sum / denominator
