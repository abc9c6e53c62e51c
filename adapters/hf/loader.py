"""`LitDataLoader`: a DataLoader over `LitShardDataset` that knows how many batches it handed out.

With loader workers the dataset copies live in other processes, so only the main process can count what the
training loop actually received (prefetched batches do not count). `state_dict()` is the dataset's state at that
count; `load_state_dict()` makes the next iteration start right after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from adapters.hf.dataset import LitShardDataset


class LitDataLoader(DataLoader):
    def __init__(self, dataset: LitShardDataset, *, collate_fn: Callable, num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=dataset.batch_size, collate_fn=collate_fn, num_workers=num_workers,
                         **kwargs)
        self._handed = 0

    def __iter__(self) -> Iterator[Any]:
        self._handed = 0
        for batch in super().__iter__():
            self._handed += 1
            yield batch

    def state_dict(self) -> dict:
        return self.dataset.state_dict(self.dataset.start_batch + self._handed)

    def load_state_dict(self, state: dict) -> None:
        self.dataset.load_state_dict(state)
        self._handed = 0
