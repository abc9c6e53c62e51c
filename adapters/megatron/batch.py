"""Collation: packed sequences -> one Megatron micro-batch (the batch contract, numpy-vectorised).

Contract notes (decided on the loader side; the model/loss side relies on them):
- `cu_seqlens` is in IMAGE-EXPANDED space (each image placeholder counts its image's count: the sample's
  `image_tokens.npy`, or `image_tokens` for shards without it) only when the loader decodes images (an `ImageSpec` was given): that is the space the LLaVA model attends in. Without
  images the model sees the tokens as they are, so `cu_seqlens` is in token space (`image_tokens` = 1).
- Each sequence's padding is its own segment in `cu_seqlens` (so `cu_seqlens[-1] == B * S`), which is what
  THD `PackedSeqParams` with padding needs; a sequence that fills S exactly has no padding segment.
  `max_seqlen` is the longest segment, padding segments included.
- A batch a worker could not fill at the end of the data is completed with empty sequences: all padding,
  `loss_mask` 0, `document_ids` -1, one padding segment of S. Batches therefore always have B rows.
- `position_ids` on padding continue counting from the last document's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PAD_CLASS = 255


@dataclass(frozen=True, kw_only=True, slots=True)
class SequenceArrays:
    """One packed sequence as the loader yields it (stored token space; images decoded if requested)."""

    shard: str
    key: str
    tokens: np.ndarray  # int32 [n]
    weights: np.ndarray  # float32 [n] (stored, or recomputed by Reweigh)
    classes: np.ndarray  # uint8 [n]
    cu_seqlens: np.ndarray  # int32 [d+1], document starts in token space, last entry n
    images_per_doc: np.ndarray  # int32 [d]
    images: tuple[np.ndarray, ...] = ()  # float32 [3, H, W] each, in placeholder order (tiles: each tile)
    meta: Any = None
    image_counts: np.ndarray | None = None  # int32 [images]: positions per image; None: the fixed count
    image_tiles: np.ndarray | None = None  # int32 [images]: tiles per image (tiling rules); None: one each

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @classmethod
    def empty(cls) -> SequenceArrays:
        """A sequence with no tokens: collates to a row of padding (used to complete a last batch)."""
        z = np.zeros(0, dtype=np.int32)
        return cls(
            shard="",
            key="<padding>",
            tokens=z,
            weights=np.zeros(0, np.float32),
            classes=np.zeros(0, np.uint8),
            cu_seqlens=np.zeros(1, np.int32),
            images_per_doc=z,
        )


def collate(
    seqs: Sequence[SequenceArrays],
    *,
    seq_len: int,
    pad_id: int = 0,
    image_tokens: int | None = None,
    image_size: int | None = None,
) -> dict[str, Any]:
    """Collate B sequences into the contract's batch. `image_tokens` / `image_size` are given only when
    images are decoded; then `cu_seqlens` is image-expanded and `images` / `num_images` are included."""
    b, s = len(seqs), seq_len
    tokens = np.full((b, s), pad_id, dtype=np.int64)
    labels = np.zeros((b, s), dtype=np.int64)
    loss_mask = np.zeros((b, s), dtype=np.float32)
    label_classes = np.full((b, s), PAD_CLASS, dtype=np.uint8)
    position_ids = np.empty((b, s), dtype=np.int64)
    document_ids = np.full((b, s), -1, dtype=np.int32)
    segments: list[np.ndarray] = []
    for row, seq in enumerate(seqs):
        n, cu = seq.n_tokens, seq.cu_seqlens
        lengths = np.diff(cu)
        expanded = lengths + _image_extra(seq, image_tokens)
        n_exp = int(expanded.sum())
        if n > s or n_exp > s:
            raise ValueError(
                f"sequence {seq.key} of shard {seq.shard} has {n} tokens ({n_exp} with images expanded), "
                f"more than seq_len={s}"
            )
        tokens[row, :n] = seq.tokens
        m = max(n - 1, 0)  # the last token has no label in its sequence
        labels[row, :m] = seq.tokens[1:]
        loss_mask[row, :m] = seq.weights[1:]
        label_classes[row, :m] = seq.classes[1:]
        starts = np.repeat(cu[:-1], lengths)
        position_ids[row, :n] = np.arange(n) - starts
        last_start = int(cu[-2]) if cu.shape[0] > 1 else 0
        position_ids[row, n:] = np.arange(n, s) - last_start
        document_ids[row, :n] = np.repeat(np.arange(lengths.shape[0], dtype=np.int32), lengths)
        segments.append(expanded if n_exp == s else np.append(expanded, s - n_exp))
    seg = np.concatenate(segments) if segments else np.zeros(0, np.int64)
    cu_seqlens = np.zeros(seg.shape[0] + 1, dtype=np.int32)
    np.cumsum(seg, out=cu_seqlens[1:])
    batch: dict[str, Any] = {
        "tokens": torch.from_numpy(tokens),
        "labels": torch.from_numpy(labels),
        "loss_mask": torch.from_numpy(loss_mask),
        "label_classes": torch.from_numpy(label_classes),
        "position_ids": torch.from_numpy(position_ids),
        "document_ids": torch.from_numpy(document_ids),
        "cu_seqlens": torch.from_numpy(cu_seqlens),
        "max_seqlen": int(seg.max()) if seg.size else 0,
    }
    if image_size is not None:
        images = [img for seq in seqs for img in seq.images]
        for seq in seqs:
            n_img = int(seq.images_per_doc.sum())
            tiles = int(seq.image_tiles.sum()) if seq.image_tiles is not None else n_img
            if len(seq.images) != tiles:
                raise ValueError(f"sequence {seq.key} of shard {seq.shard}: images were not decoded")
        batch["num_images"] = torch.tensor([int(seq.images_per_doc.sum()) for seq in seqs], dtype=torch.int32)
        batch["image_token_counts"] = torch.from_numpy(np.concatenate(
            [_counts(seq, image_tokens) for seq in seqs] + [np.zeros(0, np.int64)]))
        batch["num_image_tiles"] = torch.from_numpy(np.concatenate(
            [seq.image_tiles.astype(np.int64) if seq.image_tiles is not None
             else np.ones(int(seq.images_per_doc.sum()), np.int64) for seq in seqs] + [np.zeros(0, np.int64)]))
        batch["images"] = torch.from_numpy(np.stack(images)) if images else torch.zeros((0, 3, image_size, image_size))
        batch["image_tokens"] = int(image_tokens or 1)
    return batch


def _counts(seq: SequenceArrays, image_tokens: int | None) -> np.ndarray:
    """Each image's positions once expanded, int64 [images]."""
    n = int(seq.images_per_doc.sum())
    if seq.image_counts is not None:
        return seq.image_counts.astype(np.int64)
    return np.full(n, image_tokens or 1, dtype=np.int64)


def _image_extra(seq: SequenceArrays, image_tokens: int | None) -> np.ndarray:
    """Per document, the positions its images add beyond their placeholders (0 in token space, i.e. when images
    are not decoded)."""
    if not image_tokens:
        return np.zeros_like(seq.images_per_doc, dtype=np.int64)
    docs = seq.images_per_doc.shape[0]
    doc_of = np.repeat(np.arange(docs), seq.images_per_doc)
    return np.bincount(doc_of, weights=_counts(seq, image_tokens) - 1, minlength=docs).astype(np.int64)
