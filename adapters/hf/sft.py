"""`LitSFTTrainer`: TRL's `SFTTrainer` with the LIT weighted loss and the litdata loader (needs `pip install trl`).

The shards are already tokenized, weighted and packed, so TRL's dataset preparation (tokenizing, truncating,
packing) is skipped: `dataset_kwargs={"skip_prepare_dataset": True}` is set on the config. The loss and the loader
are `WeightedLossMixin`'s (adapters/hf/trainer.py); TRL's own loss-type options (`loss_type`, `completion_only_loss`,
`assistant_only_loss`) do not apply, since the weights already say which tokens carry loss.
"""

from __future__ import annotations

from typing import Any

from trl import SFTTrainer

from adapters.hf.trainer import WeightedLossMixin


class LitSFTTrainer(WeightedLossMixin, SFTTrainer):
    """Pass `train_dataset` (a `LitShardDataset`) and `args` (an `SFTConfig`) by keyword."""

    def __init__(self, *args: Any, train_dataset: Any = None, **kwargs: Any) -> None:
        import datasets

        config = kwargs.get("args")
        if config is not None:
            config.dataset_kwargs = {**(config.dataset_kwargs or {}), "skip_prepare_dataset": True}
        # SFTTrainer accepts only `datasets` datasets and peeks at their first example; ours is read by
        # get_train_dataloader, so TRL sees a one-row text stand-in and the real dataset is set afterwards.
        stand_in = datasets.IterableDataset.from_generator(_stand_in)
        super().__init__(*args, train_dataset=stand_in, **kwargs)
        self.train_dataset = train_dataset


def _stand_in():
    yield {"input_ids": [0]}
