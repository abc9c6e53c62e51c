"""One training step: Megatron's `get_forward_backward_func` schedule with the weighted LIT loss.

`forward_step` installs the batch's document ids and positions in the model's `DocumentState`, runs the
model with labels (Megatron returns the per-token vocab-parallel CE, [b, s]) and hands the schedule a
`WeightedLoss` bound to the batch's `loss_mask`/`label_classes`. Gradients of data-parallel replicas are
SUMMED with one all-reduce (the loss is already normalised by the global weight sum, so no averaging).
For LLaVA the language model runs in image-expanded space: see `expand_for_images`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from adapters.megatron.attention import DocumentState
from adapters.megatron.loss import WeightedLoss, global_weight_sum, reduce_reports


@dataclass(frozen=True, kw_only=True)
class StepModel:
    """What a step needs to know about the model beyond the module itself."""

    model: torch.nn.Module
    state: DocumentState
    image_token_index: int | None = None  # set for LLaVA
    image_tokens: int = 1


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def expand_for_images(values: Tensor, is_image: Tensor, image_tokens: int, length: int, fill: int) -> Tensor:
    """Map [b, s] per-token values to LLaVA's expanded space: each image placeholder becomes `image_tokens`
    copies, exactly where LLaVAModel places the ViT tokens; rows are cut or padded (`fill`) to `length`."""
    repeats = torch.where(is_image, image_tokens, 1)
    out = torch.full((values.shape[0], length), fill, dtype=values.dtype, device=values.device)
    for row in range(values.shape[0]):  # b is the micro-batch size (a handful), not a data loop
        expanded = torch.repeat_interleave(values[row], repeats[row])[:length]
        out[row, : expanded.numel()] = expanded
    return out


def expanded_positions(document_ids: Tensor) -> Tensor:
    """Positions restarting at 0 at every document (and at the padding run), for [b, s] document ids."""
    b, s = document_ids.shape
    idx = torch.arange(s, device=document_ids.device).expand(b, s)
    start = torch.ones_like(document_ids, dtype=torch.bool)
    start[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    first = torch.cummax(torch.where(start, idx, torch.zeros_like(idx)), dim=1).values
    return idx - first


def forward_step(sm: StepModel, loss: WeightedLoss, data_iterator: Iterator[dict], model: Any) -> tuple:
    batch = next(data_iterator)
    docs, pos = batch["document_ids"], batch["position_ids"]
    if sm.image_token_index is None:
        sm.state.set(docs, pos)
        ce = model(batch["tokens"], pos, None, labels=batch["labels"])
        return ce, functools.partial(loss, batch["loss_mask"], batch.get("label_classes"))

    is_image = batch["tokens"] == sm.image_token_index
    n_img = int(is_image.sum())
    if n_img != batch["images"].shape[0]:
        raise ValueError(f"batch has {n_img} image placeholders but {batch['images'].shape[0]} images")
    s = batch["tokens"].shape[1]
    length = min(int((is_image.sum(1) * (sm.image_tokens - 1) + s).max()), sm.model.language_model.max_sequence_length)
    xdocs = expand_for_images(docs, is_image, sm.image_tokens, length, -1)
    sm.state.set(xdocs, expanded_positions(xdocs))
    classes = batch.get("label_classes")
    if classes is not None:
        classes = expand_for_images(classes.long(), is_image, sm.image_tokens, length, 255)
        classes[expand_for_images(is_image.long(), is_image, sm.image_tokens, length, 1).bool()] = 255
    ce, xmask = model(
        batch["images"], batch["tokens"], pos, None, labels=batch["labels"], loss_mask=batch["loss_mask"],
        num_image_tiles=torch.ones(n_img, dtype=torch.int, device=batch["tokens"].device),
        image_token_index=sm.image_token_index,
    )
    return ce, functools.partial(loss, xmask, classes)


def train_step(
    sm: StepModel, optimizer: torch.optim.Optimizer | None, micro_batches: list[dict], *,
    dp_group: Any = None, forward_only: bool = False, clip_grad: float = 0.0,
) -> dict[str, float]:
    """Forward+backward over `micro_batches` (gradient accumulation), DP gradient sum, optimizer step."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    weight_total = global_weight_sum([b["loss_mask"] for b in micro_batches], dp_group)
    loss = WeightedLoss(weight_total=weight_total, num_microbatches=len(micro_batches), dp_size=1)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    b, s = micro_batches[0]["tokens"].shape
    reports = get_forward_backward_func()(
        forward_step_func=functools.partial(forward_step, sm, loss),
        data_iterator=iter(micro_batches),
        model=sm.model,
        num_microbatches=len(micro_batches),
        seq_length=s,
        micro_batch_size=b,
        forward_only=forward_only,
    )
    if not forward_only:
        sum_gradients(sm.model, dp_group)
        if clip_grad > 0:
            clip_gradients(sm.model, clip_grad)
        if optimizer is not None:
            optimizer.step()
    sm.state.clear()
    return reduce_reports(list(reports), dp_group)


def sum_gradients(model: torch.nn.Module, dp_group: Any) -> None:
    """Sum gradients over data-parallel replicas (one flat all-reduce)."""
    if dp_group is None or not torch.distributed.is_initialized() or torch.distributed.get_world_size(dp_group) == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch._utils._flatten_dense_tensors(grads)
    torch.distributed.all_reduce(flat, group=dp_group)
    for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def clip_gradients(model: torch.nn.Module, max_norm: float) -> float:
    """Clip by the global norm of the full (unsharded) gradient: TP-sharded parameters add their squares
    over the TP group, replicated ones (norms) are counted once because every TP rank holds the same."""
    from megatron.core import parallel_state

    sharded = [p.grad for p in model.parameters() if p.grad is not None and getattr(p, "tensor_model_parallel", False)]
    replicated = [p.grad for p in model.parameters() if p.grad is not None and not getattr(p, "tensor_model_parallel", False)]
    device = next(model.parameters()).device
    # One fused norm kernel per group instead of a Python loop over ~200 tensors (6% of a 1B step on an H100).
    sq = torch.stack(torch._foreach_norm(sharded, 2, dtype=torch.float32)).square().sum() if sharded else torch.zeros((), device=device)
    if parallel_state.get_tensor_model_parallel_world_size() > 1:
        torch.distributed.all_reduce(sq, group=parallel_state.get_tensor_model_parallel_group())
    if replicated:
        sq = sq + torch.stack(torch._foreach_norm(replicated, 2, dtype=torch.float32)).square().sum()
    total = sq.sqrt()
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    grads = sharded + replicated
    if grads:
        torch._foreach_mul_(grads, scale.to(grads[0].dtype))
    return float(total)
