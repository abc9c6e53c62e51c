"""Padding-free batches for Hugging Face models, in the layout of transformers' `DataCollatorWithFlattening`.

Every packed sequence of the micro-batch is laid end to end in one row of shape `[1, total]` (no padding), as
`DataCollatorWithFlattening` does with its examples, except that each litdata sequence already holds several
documents: `position_ids` restart at 0 at every document, and `cu_seq_lens_q/k` (int32) and `max_length_q/k`
(python ints) mark the documents, as that collator emits them with `return_flash_attn_kwargs=True`. There is no
`attention_mask` and `use_cache` is False: transformers derives a block-diagonal causal mask from packed
`position_ids` only without a mask and a cache (see adapters/hf/attention.py).

Labels follow transformers' convention (the model shifts them): `labels[i] = input_ids[i]` where the weight of
predicting token `i` is above 0, else -100, and `loss_weights[i]` is that weight. A document's first token has
weight 0 (DESIGN.md), so nothing is ever predicted across a document boundary.

Images. Each `<image>` placeholder is expanded into its count of image tokens (the shard's per-image counts, or the
manifest's fixed count for format-1 shards) with `image_token_id`, the id the model looks for
(`model.config.image_token_id`). Expanded slots get label -100 and weight 0, and document boundaries move with
them. Images are decoded with Pillow (size checked before decoding) and passed as one list to the Hugging Face
image processor; `pixel_values` and, when the processor returns them, `image_sizes` (llava_next) and
`image_grid_thw` (qwen2_vl) go into the batch.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from adapters.hf.reader import CorruptShardError, Sample

IGNORE_INDEX = -100
PROCESSOR_KEYS = ("pixel_values", "image_sizes", "image_grid_thw")  # what a model's forward takes from them


@dataclass(frozen=True, kw_only=True, slots=True)
class Expanded:
    """One packed sequence in the model's token space (image placeholders expanded)."""

    input_ids: np.ndarray  # int64 [m]
    weights: np.ndarray  # float32 [m]
    cu_seqlens: np.ndarray  # int64 [d+1]


def expand(sample: Sample, image_token_id: int | None) -> Expanded:
    """Replace each placeholder by its count of `image_token_id` slots (the placeholder's own id when None)."""
    tokens = sample.tokens.astype(np.int64)
    if len(sample.placeholders) == 0:
        return Expanded(input_ids=tokens, weights=sample.weights, cu_seqlens=sample.cu_seqlens.astype(np.int64))
    repeats = np.ones(len(tokens), dtype=np.int64)
    repeats[sample.placeholders] = sample.image_tokens
    is_image = np.zeros(len(tokens), dtype=bool)
    is_image[sample.placeholders] = True
    is_image = np.repeat(is_image, repeats)
    ids = np.repeat(tokens, repeats)
    if image_token_id is not None:
        ids[is_image] = image_token_id
    weights = np.repeat(sample.weights, repeats)
    weights[is_image] = 0.0  # image slots are inputs, never targets
    ends = np.concatenate([[0], np.cumsum(repeats)])
    return Expanded(input_ids=ids, weights=weights, cu_seqlens=ends[sample.cu_seqlens])


@dataclass(kw_only=True)
class PackedCollator:
    """`PackedCollator(image_processor=AutoImageProcessor..., image_token_id=model.config.image_token_id)`;
    text-only models need neither."""

    image_processor: Any = None
    image_token_id: int | None = None
    max_pixels: int = 40_000_000  # refuse larger images before decoding them (decompression bombs)

    def __call__(self, samples: Sequence[Sample]) -> dict[str, Any]:
        if not samples:
            raise ValueError("PackedCollator received an empty batch")
        rows = [expand(s, self.image_token_id) for s in samples]
        ids = np.concatenate([r.input_ids for r in rows])
        weights = np.concatenate([r.weights for r in rows]).astype(np.float32)
        lengths = np.concatenate([np.diff(r.cu_seqlens) for r in rows])
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        batch: dict[str, Any] = {
            "input_ids": torch.from_numpy(ids)[None],
            "labels": torch.from_numpy(np.where(weights > 0, ids, IGNORE_INDEX))[None],
            "position_ids": torch.from_numpy(np.arange(len(ids), dtype=np.int64) - starts)[None],
            "loss_weights": torch.from_numpy(weights)[None],
            "cu_seq_lens_q": torch.from_numpy(cu),
            "cu_seq_lens_k": torch.from_numpy(cu.copy()),
            "max_length_q": int(lengths.max()),
            "max_length_k": int(lengths.max()),
            "use_cache": False,  # a cache turns off transformers' packed-document detection (attention.py)
        }
        images = [self._open(s, i) for s in samples for i in range(len(s.images))]
        if images:
            if self.image_processor is None:
                raise ValueError(f"sequence {samples[0].shard}:{samples[0].key} and others hold images: pass "
                                 "PackedCollator(image_processor=..., image_token_id=model.config.image_token_id)")
            out = self.image_processor(images=images, return_tensors="pt")
            batch.update({k: out[k] for k in PROCESSOR_KEYS if k in out})
        return batch

    def _open(self, sample: Sample, index: int) -> Image.Image:
        member = sample.image_members[index]
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(sample.images[index]))
                if img.width * img.height > self.max_pixels:
                    raise CorruptShardError(sample.shard, member, f"{img.width}x{img.height} exceeds "
                                            f"{self.max_pixels} pixels")
                return img.convert("RGB")
            except (OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exn:
                raise CorruptShardError(sample.shard, member, f"undecodable image ({type(exn).__name__}: {exn})") \
                    from None
