"""The image transform of Megatron-LM's `examples/multimodal/image_processing.py`, without torchvision.

What the example does (and what this module reproduces, written anew with Pillow and numpy so that no
torchvision build has to match the pinned torch):
- every tile: resized to `input_size` x `input_size` (bicubic; the example ignores img_h/img_w here), made
  RGB, scaled to [0, 1] and normalised with the vision model's mean and std, as a float32 (3, H, W) tensor;
- without tiling, the whole image is the one tile;
- with tiling (InternVL's dynamic preprocessing): among the tile grids (i, j) with min_num <= i*j <= max_num,
  the grid whose aspect ratio is closest to the image's (ties go to the larger grid when the image covers more
  than half of it); the image is resized to the grid and cut into square tiles row by row; with
  `use_thumbnail` and more than one tile, the whole image resized to one tile is appended.

`torchvision.transforms.Resize` on a PIL image calls `PIL.Image.resize` with the same filter, and `ToTensor`
is the division by 255 done here, so the pixels are the example's. Augmentation is refused, as the example does.
The "clip" type resizes before converting to RGB, the others convert first: the order is kept, because it
changes the result for palette and greyscale images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_SIGLIP = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
_RADIO_G = ((0.4850, 0.4560, 0.4060), (0.2230, 0.2240, 0.2250))
# vision_model_type -> (mean, std), the example's `pixel_statistics` ("huggingface" models are not supported here).
PIXEL_STATISTICS = {
    "clip": _CLIP,
    "siglip": _SIGLIP,
    "internvit": _IMAGENET,
    "internvit300M": _IMAGENET,
    "radio": _CLIP,
    "radio-g": _RADIO_G,
    "cradio-g": _CLIP,
}


def closest_grid(
    aspect: float, grids: Sequence[tuple[int, int]], width: int, height: int, size: int
) -> tuple[int, int]:
    """The tile grid (columns, rows) whose aspect ratio is nearest the image's; on a tie the later (larger)
    grid wins if the image's area exceeds half of that grid's pixel area (the example's default rule)."""
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * size * size * cols * rows:
            best = (cols, rows)
    return best


def tile(
    image: Image.Image, *, size: int, min_num: int = 1, max_num: int = 6, thumbnail: bool = False
) -> list[Image.Image]:
    """Cut an image into `size`-pixel square tiles on its closest grid (plus a thumbnail, see the docstring)."""
    width, height = image.size
    grids = sorted(
        {
            (i, j)
            for n in range(min_num, max_num + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if min_num <= i * j <= max_num
        },
        key=lambda g: g[0] * g[1],
    )
    cols, rows = closest_grid(width / height, grids, width, height, size)
    resized = image.resize((cols * size, rows * size))  # Pillow's default filter, as in the example
    tiles = [
        resized.crop((c * size, r * size, (c + 1) * size, (r + 1) * size)) for r in range(rows) for c in range(cols)
    ]
    if thumbnail and len(tiles) != 1:
        tiles.append(image.resize((size, size)))
    return tiles


class ImageTransform:
    """`ImageTransform(input_size, vision_model_type)(img, img_h, img_w, use_tiling, max_num_tiles, use_thumbnail)`
    -> list of float32 (3, input_size, input_size) tensors, one per tile: the example's call signature."""

    def __init__(self, input_size: int, vision_model_type: str) -> None:
        if vision_model_type not in PIXEL_STATISTICS:
            raise ValueError(
                f"image processing for vision model {vision_model_type!r} is not ported; "
                f"choose one of {sorted(PIXEL_STATISTICS)}"
            )
        self.input_size = input_size
        self.vision_model_type = vision_model_type
        mean, std = PIXEL_STATISTICS[vision_model_type]
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)

    def __call__(
        self,
        img: Image.Image,
        img_h: int,
        img_w: int,
        use_tiling: bool = False,
        max_num_tiles: int = 1,
        use_thumbnail: bool = False,
        augment: bool = False,
    ) -> list[torch.Tensor]:
        if augment:
            raise ValueError("image augmentation is not implemented (nor is it in the example)")
        if not use_tiling:
            return [self._to_tensor(img)]
        if img_h != img_w:
            raise ValueError(f"dynamic tiling expects square tiles, got img_h={img_h} img_w={img_w}")
        tiles = tile(img, size=img_h, min_num=1, max_num=max_num_tiles, thumbnail=use_thumbnail)
        return [self._to_tensor(t) for t in tiles]

    def _to_tensor(self, img: Image.Image) -> torch.Tensor:
        size = (self.input_size, self.input_size)
        if self.vision_model_type == "clip":
            img = img.resize(size, Image.Resampling.BICUBIC)
            img = img if img.mode == "RGB" else img.convert("RGB")
        else:
            img = img if img.mode == "RGB" else img.convert("RGB")
            img = img.resize(size, Image.Resampling.BICUBIC)
        pixels = np.asarray(img, dtype=np.float32) / np.float32(255.0)
        pixels = (pixels - self._mean) / self._std
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
