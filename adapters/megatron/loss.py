"""The LIT loss: `sum(w * ce) / sum(w)` over the GLOBAL batch, as a Megatron schedule `loss_func`.

Why not Megatron's `calculate_per_token_loss=True`: in 0.16 the schedules accumulate the token count in an
`int` tensor (`torch.zeros([], dtype=torch.int, device="cuda")`), so fractional weight sums (e.g.
`--weight instruction=0.3`) cannot be carried. But the weights are data, known before the forward pass, so
the training loop sums `loss_mask` over all micro-batches of the step and all-reduces it over data-parallel
ranks once (`global_weight_sum`). Each micro-batch's loss is then `sum(w * ce) / W_global`, pre-multiplied by
the two factors Megatron divides by afterwards: the schedule's `/ num_microbatches` (legacy 2-tuple
return) and the data-parallel gradient average (`dp_size`). The sum over micro-batches and ranks of the
back-propagated values is then exactly `sum(w * ce) / sum(w)` of the global batch; under tensor parallelism
every TP rank holds the same per-token CE (vocab-parallel CE all-reduces over the vocabulary shards).

Vocab-parallel CE has no ignore index: every padded or masked label must carry weight 0 (the loader does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from litdata.classes import TokenClass

# Summed over micro-batches (and data-parallel ranks) before the means are taken; see `LossReport`.
REPORT_KEYS = ("weighted_ce", "weight_sum", "response_ce", "response_tokens", "instruction_ce",
               "instruction_tokens", "supervised_tokens")


def global_weight_sum(loss_masks: list[Tensor], dp_group: Any = None) -> Tensor:
    """sum(w) over every micro-batch of this step on every data-parallel rank (one all-reduce)."""
    total = torch.stack([m.double().sum() for m in loss_masks]).sum()
    if dp_group is not None and torch.distributed.is_initialized() and torch.distributed.get_world_size(dp_group) > 1:
        torch.distributed.all_reduce(total, group=dp_group)
    return total


def per_token_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Vocab-parallel CE, [b, s] in float32 (logits [s, b, v/tp] as Megatron's output layer gives them)."""
    from megatron.core import tensor_parallel

    ce = tensor_parallel.vocab_parallel_cross_entropy(logits.float(), labels.transpose(0, 1).contiguous())
    return ce.transpose(0, 1)


@dataclass(frozen=True, kw_only=True)
class WeightedLoss:
    """Callable with `functools.partial(loss, loss_mask, label_classes)` as a schedule's `loss_func`.

    `weight_total` is `global_weight_sum(...)` for the step; `num_microbatches` and `dp_size` undo the
    schedule's and the data-parallel wrapper's averaging (set `dp_size=1` when gradients are summed).
    """

    weight_total: Tensor
    num_microbatches: int = 1
    dp_size: int = 1

    def __call__(self, loss_mask: Tensor, label_classes: Tensor | None, ce: Tensor) -> tuple[Tensor, dict]:
        w = loss_mask.to(ce.device, torch.float32)
        if w.shape != ce.shape:
            raise ValueError(f"loss_mask {tuple(w.shape)} does not match the per-token loss {tuple(ce.shape)}")
        weighted = (w * ce.float()).sum()
        scale = self.num_microbatches * self.dp_size / torch.clamp(self.weight_total.to(ce.device).float(), min=1e-12)
        report = class_report(ce.detach().float(), w, label_classes)
        return weighted * scale, report


def class_report(ce: Tensor, w: Tensor, label_classes: Tensor | None) -> dict[str, Tensor]:
    """Sums from which the weighted, response-only and instruction-only means are computed."""
    out = {
        "weighted_ce": (w * ce).sum(),
        "weight_sum": w.sum(),
        "supervised_tokens": (w > 0).sum().float(),
    }
    for name, cls in (("response", TokenClass.RESPONSE), ("instruction", TokenClass.INSTRUCTION)):
        if label_classes is None:
            sel = torch.zeros_like(w, dtype=torch.bool)
        else:
            sel = label_classes.to(ce.device) == int(cls)
        out[f"{name}_ce"] = (ce * sel).sum()
        out[f"{name}_tokens"] = sel.sum().float()
    return {k: v.detach().reshape(()) for k, v in out.items()}


def reduce_reports(reports: list[dict[str, Tensor]], dp_group: Any = None) -> dict[str, float]:
    """Sum micro-batch reports (and data-parallel ranks) into the per-step numbers written to the log."""
    if not reports:
        return {}
    sums = torch.stack([torch.stack([r[k].double().cpu() for k in REPORT_KEYS]) for r in reports]).sum(0)
    if dp_group is not None and torch.distributed.is_initialized() and torch.distributed.get_world_size(dp_group) > 1:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        sums = sums.to(device)
        torch.distributed.all_reduce(sums, group=dp_group)
        sums = sums.cpu()
    s = dict(zip(REPORT_KEYS, sums.tolist()))

    def mean(num: str, den: str) -> float | None:
        return s[num] / s[den] if s[den] > 0 else None

    return {
        "loss": mean("weighted_ce", "weight_sum"),
        "response_loss": mean("response_ce", "response_tokens"),
        "instruction_loss": mean("instruction_ce", "instruction_tokens"),
        "supervised_tokens": int(s["supervised_tokens"]),
        "weight_sum": s["weight_sum"],
    }
