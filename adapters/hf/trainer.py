"""`LitTrainer` (a `transformers.Trainer`) and `WeightedLossMixin`, which gives TRL's `SFTTrainer` the same loss.

The pitfall this avoids. Trainer's `num_items_in_batch` counts `labels != -100` over the micro-batches of one
optimizer step (and, with `average_tokens_across_devices`, over ranks), so a model or `compute_loss_func` that
divides by it computes a token mean, never a weighted mean; a per-micro-batch `sum(w*ce)/sum(w)` instead weights
every micro-batch equally, however much weight it carries. Here `_get_num_items_in_batch` returns the weight sum
of the step's micro-batches, all-gathered over the data-parallel ranks, and `compute_loss` divides each
micro-batch's `sum(w*ce)` by it (times the rank count, since DDP/FSDP average gradients over ranks). Trainer is
told the loss is already scaled for gradient accumulation (`loss_is_scaled_for_ga = True`).

Data. A `LitShardDataset` train set gets a `LitDataLoader` for this rank (`process_index`, `world_size`,
`per_device_train_batch_size`), not accelerate's wrapper: accelerate would either dispatch batches from rank 0 and
slice them along the batch dimension (a padding-free batch has one row) or re-shard a stream that is already split.
On resume, Trainer skips the batches already trained by reading them again (`skip_first_batches`), so a resumed
run continues with the same batches.

Resume of LLaVA-style models. transformers 5.x saves them under their legacy key names (`language_model.model.*`)
and Trainer loads the file back with `load_state_dict(strict=False)` without renaming: no weight is loaded, with
only a warning, and the run silently restarts from the initial weights. When that load misses keys, the weights
are read again through `from_pretrained`, which renames them, and loaded strictly.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

from adapters.hf import attention
from adapters.hf.collator import PackedCollator
from adapters.hf.dataset import LitShardDataset
from adapters.hf.loader import LitDataLoader
from adapters.hf.loss import normalised, weight_sum, weighted_ce_sum


class WeightedLossMixin:
    """Put first in the bases: `class LitSFTTrainer(WeightedLossMixin, SFTTrainer)`."""

    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("data_collator") is None:
            kwargs["data_collator"] = PackedCollator()
        super().__init__(*args, **kwargs)
        if self.args.n_gpu > 1:
            raise ValueError("nn.DataParallel (several GPUs in one process) is not supported: launch one process "
                             "per GPU with torchrun or accelerate")
        attention.check_model(self.model)

    def get_train_dataloader(self):
        dataset = self.train_dataset
        if not isinstance(dataset, LitShardDataset):
            return super().get_train_dataloader()
        args = self.args
        dataset = dataset.configured(batch_size=args.per_device_train_batch_size, rank=args.process_index,
                                     world_size=args.world_size)
        workers = args.dataloader_num_workers
        return LitDataLoader(dataset, collate_fn=self.data_collator, num_workers=workers,
                             pin_memory=args.dataloader_pin_memory,
                             persistent_workers=args.dataloader_persistent_workers and workers > 0,
                             prefetch_factor=args.dataloader_prefetch_factor if workers > 0 else None)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        self._last_load_result = load_result
        super()._issue_warnings_after_load(load_result)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        self._last_load_result = None
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        result = self._last_load_result
        if result is not None and result.missing_keys:  # see the module docstring
            target = model if model is not None else self.model
            dtype = next(target.parameters()).dtype
            saved = type(target).from_pretrained(resume_from_checkpoint, config=target.config, dtype=dtype)
            target.load_state_dict(saved.state_dict(), strict=True)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        if not batch_samples or "loss_weights" not in batch_samples[0]:
            return None
        total = weight_sum(batch_samples).to(device)
        if self.args.world_size > 1:
            total = self.accelerator.gather(total.reshape(1)).sum()
        return total

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | None = None) -> Any:
        attention.check_batch(inputs)
        inputs = dict(inputs)
        labels, loss_weights = inputs.pop("labels"), inputs.pop("loss_weights")
        outputs = model(**inputs)  # no labels: the model's own (token-mean) loss is not computed
        training = model.training and num_items_in_batch is not None
        if not training:  # evaluation averages per-batch losses itself: this batch's weighted mean
            num_items_in_batch = weight_sum([{"loss_weights": loss_weights}])
        loss = normalised(weighted_ce_sum(outputs.logits, labels, loss_weights), num_items_in_batch)
        if training and self.args.world_size > 1:
            loss = loss * self.accelerator.num_processes  # DDP/FSDP average gradients over ranks
        return (loss, outputs) if return_outputs else loss


class LitTrainer(WeightedLossMixin, Trainer):
    """`transformers.Trainer` with the LIT weighted loss and the litdata loader (see the module docstring)."""
