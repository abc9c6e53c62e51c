"""Collation into the batch contract, checked against hand-computed batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adapters.megatron.batch import SequenceArrays, collate

PAD = 7


def seq(tokens, cu, weights, classes, images_per_doc=None, images=()) -> SequenceArrays:
    cu = np.asarray(cu, np.int32)
    return SequenceArrays(
        shard="shard-000000.tar",
        key="k",
        tokens=np.asarray(tokens, np.int32),
        weights=np.asarray(weights, np.float32),
        classes=np.asarray(classes, np.uint8),
        cu_seqlens=cu,
        images_per_doc=np.asarray(images_per_doc if images_per_doc is not None else [0] * (len(cu) - 1), np.int32),
        images=tuple(images),
    )


# Two documents (2 + 3 tokens) in row 0; one document of 3 tokens with one image placeholder in row 1.
A = seq([10, 11, 12, 13, 14], [0, 2, 5], [0, 1, 0, 0.5, 1], [0, 5, 0, 4, 5])
B = seq([20, 2, 22], [0, 3], [0, 0, 1], [0, 2, 5], images_per_doc=[1])


def test_tokens_labels_and_loss_mask_are_shifted_and_padded():
    batch = collate([A, B], seq_len=8, pad_id=PAD)
    assert batch["tokens"].tolist() == [[10, 11, 12, 13, 14, PAD, PAD, PAD], [20, 2, 22, PAD, PAD, PAD, PAD, PAD]]
    assert batch["labels"].tolist() == [[11, 12, 13, 14, 0, 0, 0, 0], [2, 22, 0, 0, 0, 0, 0, 0]]
    # The label 12 at position 1 crosses into document 1: its weight (document 1's first token) is 0.
    assert batch["loss_mask"].tolist() == [[1, 0, 0.5, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]
    assert batch["label_classes"].tolist() == [[5, 0, 4, 5, 255, 255, 255, 255], [2, 5] + [255] * 6]
    assert batch["tokens"].dtype == torch.int64 and batch["labels"].dtype == torch.int64
    assert batch["loss_mask"].dtype == torch.float32 and batch["label_classes"].dtype == torch.uint8


def test_position_ids_restart_per_document_and_document_ids_mark_padding():
    batch = collate([A, B], seq_len=8, pad_id=PAD)
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]]
    assert batch["document_ids"].tolist() == [[0, 0, 1, 1, 1, -1, -1, -1], [0, 0, 0, -1, -1, -1, -1, -1]]
    assert batch["document_ids"].dtype == torch.int32


def test_cu_seqlens_in_token_space_include_padding_segments():
    batch = collate([A, B], seq_len=8)
    assert batch["cu_seqlens"].tolist() == [0, 2, 5, 8, 11, 16]
    assert batch["cu_seqlens"].dtype == torch.int32
    assert batch["max_seqlen"] == 5
    assert "images" not in batch


def test_cu_seqlens_expand_images_when_images_are_decoded():
    image = np.zeros((3, 4, 4), np.float32)
    b = seq([20, 2, 22], [0, 3], [0, 0, 1], [0, 2, 5], images_per_doc=[1], images=[image])
    batch = collate([A, b], seq_len=8, image_tokens=4, image_size=4)
    # Row 1: 3 tokens + 3 extra for the image = 6 expanded, then 2 of padding.
    assert batch["cu_seqlens"].tolist() == [0, 2, 5, 8, 14, 16]
    assert batch["max_seqlen"] == 6
    assert batch["num_images"].tolist() == [0, 1]
    assert batch["images"].shape == (1, 3, 4, 4)
    assert batch["image_tokens"] == 4


def test_full_sequence_has_no_padding_segment():
    full = seq(list(range(100, 108)), [0, 3, 8], [0] + [1] * 7, [5] * 8)
    batch = collate([full], seq_len=8)
    assert batch["cu_seqlens"].tolist() == [0, 3, 8]
    assert batch["labels"][0, -1] == 0 and batch["loss_mask"][0, -1] == 0


def test_empty_sequence_is_a_row_of_padding():
    batch = collate([A, SequenceArrays.empty()], seq_len=8, pad_id=PAD)
    assert batch["tokens"][1].tolist() == [PAD] * 8
    assert batch["loss_mask"][1].sum() == 0
    assert batch["document_ids"][1].tolist() == [-1] * 8
    assert batch["cu_seqlens"].tolist() == [0, 2, 5, 8, 16]


def test_batch_without_images_has_empty_image_tensor():
    batch = collate([A], seq_len=8, image_tokens=4, image_size=6)
    assert batch["images"].shape == (0, 3, 6, 6) and batch["num_images"].tolist() == [0]


def test_sequence_longer_than_seq_len_is_refused_with_its_key():
    with pytest.raises(ValueError, match="sequence k of shard shard-000000.tar has 5 tokens"):
        collate([A], seq_len=4)
    image = np.zeros((3, 4, 4), np.float32)
    b = seq([20, 2, 22], [0, 3], [0, 0, 1], [0, 2, 5], images_per_doc=[1], images=[image])
    with pytest.raises(ValueError, match="6 with images expanded"):
        collate([b], seq_len=5, image_tokens=4, image_size=4)
