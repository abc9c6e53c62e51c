# ruff: noqa: UP006, UP007, UP035  (typing.Dict/List/Tuple/Union: the example's annotations, kept verbatim)
"""The sample and batch types of Megatron-LM's `examples/multimodal/dataset_helpers.py`, field for field.

The example cannot be imported (it is a script folder that needs `megatron.training`, its tokenizer and its
argument parser), so its three dataclasses are declared here again with the same field names, order and
annotations: `ImageTaskSample`, `ImageTaskSamplePacked` and `ImageTaskBatchPacked`
(tests/adapters/energon/test_energon_adapter.py checks them against the example's declarations). Code written against the
example's types (its `get_batch`, `encode_batch`) therefore reads ours unchanged.

litdata adds one thing: `loss_weights`, the float per-token loss weights (fractional lambda for instruction
tokens), in the same alignment as `labels` (`loss_weights[i]` weighs the prediction of `tokens[i]`). The
`Lit...` subclasses carry it; being subclasses, they pass the example's `isinstance` checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple, Union

import torch
from megatron.energon import Batch, Sample

# Megatron-Core's `llava_model.IGNORE_INDEX`: the label of a token that gets no loss.
IGNORE_INDEX = -100


@dataclass
class ImageTaskSample(Sample):
    __key__: str
    __restore_key__: Tuple[Union[str, int, tuple], ...]
    __subflavor__: Dict
    __subflavors__: Dict
    # (c, h, w)
    imgs: List[torch.Tensor]
    num_tiles: List[int]
    tokens: torch.Tensor
    total_len: int  # Total token count in the sample, including text and image tokens
    labels: torch.Tensor = None


@dataclass
class ImageTaskSamplePacked(Sample):
    __key__: str
    __restore_key__: Tuple[Union[str, int, tuple], ...]
    __subflavor__: Dict
    __subflavors__: Dict
    tokens: torch.Tensor  # (seq_len,)
    labels: torch.Tensor  # (seq_len,)
    imgs: List[torch.Tensor]
    num_tiles: List[int]  # tiles per image, (num_imgs,)
    max_length: int  # the longest sub-sample (document), image tokens included
    cu_lengths: List[int]  # cumulative sub-sample lengths, image tokens included, (P + 1,)


@dataclass
class ImageTaskBatchPacked(Batch):
    __key__: List[str]
    __restore_key__: Tuple[Union[str, int, tuple], ...]
    __subflavor__: Dict
    __subflavors__: List[Dict]
    tokens: torch.Tensor  # (N, seq_len)
    labels: torch.Tensor  # (N, seq_len + 1)
    imgs: torch.Tensor  # every tile of the batch, (num_tiles, C, H, W)
    num_tiles: List[List[int]]
    max_lengths: List[int]  # (N,)
    cu_lengths: List[List[int]]  # (N, P + 1)


@dataclass
class LitImageTaskSamplePacked(ImageTaskSamplePacked):
    """One litdata packed sequence: the example's packed sample plus the float weights (float32, (seq_len,))."""

    loss_weights: torch.Tensor


@dataclass
class LitImageTaskBatchPacked(ImageTaskBatchPacked):
    """The example's batch plus `loss_weights` (float32, (N, seq_len + 1), padded like `labels`, with 0)."""

    loss_weights: torch.Tensor
