"""`LitdataTaskEncoder`: litdata's compiled folder -> the sample and batch types of Megatron-LM's multimodal example.

Each litdata sample is already one packed sequence of whole documents, so there is no packing buffer:
`encode_sample` turns it straight into the example's `ImageTaskSamplePacked` (plus `loss_weights`), and `batch`
/ `encode_batch` collate as the example's `TaskEncoder.batch` / `encode_batch` do. Run it with
`packing_buffer_size=None` (the example's packing path would re-pack packed sequences).

What each field holds (alignment as in the example: `labels[i]` is the target at token i, and `get_batch`
shifts labels left by one):
- `tokens`: the stored token ids (int64); image placeholders become `image_token_index` if one is given.
- `labels`: `where(weights > 0, tokens, -100)`.
- `loss_weights`: the float weights (stored, or recomputed from the stored classes with a `Reweigh`).
- `imgs`, `num_tiles`: every image through the example's image transform, tiles in order.
- `cu_lengths`: document boundaries in image-expanded space (each image counts its expanded tokens, per
  issue 13's contract), `max_length`: the longest document there.

Each image's expanded count must equal `num_tiles * num_image_embeddings_per_tile`, the space LLaVAModel
attends in; a sample where the compiler counted differently is refused with both numbers, because its
`cu_lengths` would not match the model's sequence.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from megatron.energon import Cooker, DefaultTaskEncoder, stateless
from megatron.energon.errors import FatalSampleError
from PIL import Image

from adapters.energon.image_transform import ImageTransform
from adapters.energon.sequence import (
    IMAGE_TILES,
    IMAGE_TOKENS,
    LitdataSequence,
    SampleError,
    cook_litdata,
)
from adapters.energon.types import IGNORE_INDEX, LitImageTaskBatchPacked, LitImageTaskSamplePacked
from adapters.megatron.reweigh import Reweigh
from litdata.shards.manifest import Manifest
from litdata.shards.reader import FormatProblem, image_token_counts
from litdata.shards.schema import FORMAT_NAME


class LitdataTaskEncoder(DefaultTaskEncoder[LitdataSequence, LitImageTaskSamplePacked, LitImageTaskBatchPacked, dict]):
    decoder = None  # the cooker gets the member bytes and decodes them with litdata.shards.reader

    def __init__(
        self,
        data: str | os.PathLike,
        *,
        num_image_embeddings_per_tile: int,
        img_h: int = 336,
        img_w: int = 336,
        vision_model_type: str = "clip",
        use_tiling: bool = False,
        max_num_tiles: int = 1,
        use_thumbnail: bool = False,
        dataloader_seq_length: int | None = None,
        image_token_index: int | None = None,
        reweigh: Reweigh | None = None,
        max_pixels: int = 64_000_000,
    ) -> None:
        super().__init__()
        manifest = Manifest.read(Path(data))
        self.cookers = [Cooker(cook_litdata, has_subflavors={"litdata_format": FORMAT_NAME})]
        self.pad_id = manifest.pad_id
        if manifest.image_token_id is None:
            raise ValueError(f"{data}: the manifest records no image_token_id; recompile with this litdata")
        self.stored_image_token_id = manifest.image_token_id
        self.fixed_image_tokens = manifest.image_tokens  # tile/processor rules: None, a count per image
        self.per_tile = num_image_embeddings_per_tile
        if not use_tiling and self.fixed_image_tokens not in (None, self.per_tile):
            raise ValueError(
                f"{data} was compiled with --image-tokens {self.fixed_image_tokens}, but the vision model emits "
                f"{self.per_tile} embeddings per image: recompile with --image-tokens {self.per_tile}"
            )
        self.img_h, self.img_w = img_h, img_w
        self.use_tiling, self.max_num_tiles, self.use_thumbnail = use_tiling, max_num_tiles, use_thumbnail
        self.transform_img = ImageTransform(img_h, vision_model_type)
        self.dataloader_seq_length = dataloader_seq_length
        self.image_token_index = image_token_index
        self.reweigh = reweigh
        self.max_pixels = max_pixels

    @classmethod
    def from_args(
        cls,
        args: Any,
        data: str | os.PathLike,
        *,
        num_image_embeddings_per_tile: int,
        image_token_index: int | None = None,
        reweigh: Reweigh | None = None,
    ) -> LitdataTaskEncoder:
        """From the example's parsed arguments (`get_args()`): the image options it reads itself."""
        if getattr(args, "use_area_weighted_aspect_ratio", False):
            raise ValueError("--use-area-weighted-aspect-ratio is not ported to adapters/energon/image_transform.py")
        return cls(
            data,
            num_image_embeddings_per_tile=num_image_embeddings_per_tile,
            img_h=args.img_h,
            img_w=args.img_w,
            vision_model_type=args.vision_model_type,
            use_tiling=args.use_tiling,
            max_num_tiles=args.max_num_tiles,
            use_thumbnail=args.use_thumbnail,
            dataloader_seq_length=args.dataloader_seq_length,
            image_token_index=image_token_index,
            reweigh=reweigh,
        )

    @stateless
    def encode_sample(self, sample: LitdataSequence) -> LitImageTaskSamplePacked:
        tokens = sample.tokens.astype(np.int64)
        weights = self.reweigh.apply(sample.classes, sample.cu_seqlens) if self.reweigh else sample.weights
        is_image = tokens == self.stored_image_token_id
        n_images = int(is_image.sum())
        if len(sample.image_bytes) != n_images:
            self._fail(sample, "img*", f"{len(sample.image_bytes)} images for {n_images} placeholders")
        try:
            counts = image_token_counts(sample.per_image, n_images, self.fixed_image_tokens)
        except FormatProblem as exn:
            self._fail(sample, exn.member, exn.reason)
        imgs: list[torch.Tensor] = []
        num_tiles: list[int] = []
        for member, data in zip(sample.image_members, sample.image_bytes):
            tiles = self.transform_img(
                self._open(sample, member, data),
                self.img_h,
                self.img_w,
                self.use_tiling,
                self.max_num_tiles,
                self.use_thumbnail,
            )
            imgs += tiles
            num_tiles.append(len(tiles))
        self._check_tiles(sample, counts, num_tiles)

        # Document lengths in image-expanded space: each placeholder stands for counts[i] tokens.
        doc_of_image = np.searchsorted(sample.cu_seqlens, np.flatnonzero(is_image), side="right") - 1
        n_docs = sample.cu_seqlens.shape[0] - 1
        extra = np.bincount(doc_of_image, weights=counts.astype(np.int64) - 1, minlength=n_docs).astype(np.int64)
        lengths = np.diff(sample.cu_seqlens).astype(np.int64) + extra
        cu_lengths = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)

        if self.image_token_index is not None:
            tokens[is_image] = self.image_token_index
        labels = np.where(weights > 0, tokens, IGNORE_INDEX)
        return LitImageTaskSamplePacked(
            __key__=sample.__key__,
            __restore_key__=sample.__restore_key__,
            __subflavor__=None,
            __subflavors__=sample.__subflavors__,
            __sources__=sample.__sources__,
            tokens=torch.from_numpy(tokens),
            labels=torch.from_numpy(labels),
            imgs=imgs,
            num_tiles=num_tiles,
            max_length=int(lengths.max()),
            cu_lengths=torch.from_numpy(cu_lengths),
            loss_weights=torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32)),
        )

    def batch(self, samples: list[LitImageTaskSamplePacked]) -> LitImageTaskBatchPacked:
        """The example's `TaskEncoder.batch`, plus `loss_weights`; sequences longer than `dataloader_seq_length`
        are refused instead of truncated (the example cuts them), since the cut tokens would be lost silently.
        The example's fp8 padding of the batch is not reproduced. Refusals are Energon `FatalSampleError`s: its
        error handler would otherwise drop the batch and carry on."""
        imgs = [img for s in samples for img in s.imgs]
        stacked = torch.stack(imgs) if imgs else torch.tensor([[0]], dtype=torch.float32)
        seq_len = self.dataloader_seq_length or max(len(s.tokens) for s in samples)
        for s in samples:
            if len(s.tokens) > seq_len:
                raise FatalSampleError(
                    f"sample {s.__key__}: {len(s.tokens)} tokens exceed dataloader_seq_length={seq_len}"
                )
        n = len(samples)
        tokens = torch.full((n, seq_len), self.pad_id, dtype=torch.int64)
        labels = torch.full((n, seq_len + 1), self.pad_id, dtype=torch.int64)  # +1: get_batch shifts left
        loss_weights = torch.zeros((n, seq_len + 1), dtype=torch.float32)
        for i, s in enumerate(samples):
            tokens[i, : len(s.tokens)] = s.tokens
            labels[i, : len(s.labels)] = s.labels
            loss_weights[i, : len(s.loss_weights)] = s.loss_weights
        num_tiles = torch.tensor([t for s in samples for t in s.num_tiles], dtype=torch.int32)
        if len(num_tiles) == 0:
            num_tiles = torch.tensor([[0]], dtype=torch.int32)
        if len({len(s.cu_lengths) for s in samples}) != 1:
            raise FatalSampleError(
                "packed samples with different document counts cannot share a batch: use --micro-batch-size 1, "
                "as the example's get_batch requires for packed sequences"
            )
        return LitImageTaskBatchPacked(
            __key__=[s.__key__ for s in samples],
            __restore_key__=[s.__restore_key__ for s in samples],
            __subflavor__=None,
            __subflavors__=samples[0].__subflavors__,
            tokens=tokens,
            labels=labels,
            imgs=stacked,
            num_tiles=num_tiles,
            max_lengths=torch.tensor([s.max_length for s in samples], dtype=torch.int32),
            cu_lengths=torch.stack([s.cu_lengths for s in samples]),
            loss_weights=loss_weights,
        )

    def encode_batch(self, batch: LitImageTaskBatchPacked) -> dict:
        """As the example: the batch as a dict of its fields, without `__subflavors__`."""
        raw = dataclasses.asdict(batch)
        del raw["__subflavors__"]
        return raw

    # ---- helpers ---------------------------------------------------------------------------------------
    def _check_tiles(self, sample: LitdataSequence, counts: np.ndarray, num_tiles: list[int]) -> None:
        stored_tiles = sample.per_image.get(IMAGE_TILES)
        if stored_tiles is not None and stored_tiles.tolist() != num_tiles:
            self._fail(
                sample,
                IMAGE_TILES,
                f"the compiler counted tiles {stored_tiles.tolist()}, "
                f"this transform makes {num_tiles}: use the compile's tile settings",
            )
        want = [t * self.per_tile for t in num_tiles]
        if counts.tolist() != want:
            member = IMAGE_TOKENS if IMAGE_TOKENS in sample.per_image else "manifest image_tokens"
            self._fail(
                sample,
                member,
                f"image token counts {counts.tolist()[:8]} differ from the model's "
                f"{want[:8]} (tiles x {self.per_tile} embeddings per tile)",
            )

    def _open(self, sample: LitdataSequence, member: str, data: bytes) -> Image.Image:
        """Decode one image fully, refusing oversized ones before decoding (decompression bombs)."""
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(io.BytesIO(data)) as img:
                    if img.width * img.height > self.max_pixels:
                        self._fail(sample, member, f"{img.width}x{img.height} exceeds {self.max_pixels} pixels")
                    img.load()
                    return img.copy()
            except (OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exn:
                self._fail(sample, member, f"undecodable image ({type(exn).__name__}: {exn})")

    @staticmethod
    def _fail(sample: LitdataSequence, member: str, reason: str) -> NoReturn:
        raise SampleError(sample.shard, str(sample.__key__), member, reason)
