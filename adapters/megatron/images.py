"""Image preprocessing for the vision tower: decode with Pillow, pad to square, resize, normalise (numpy).

This follows LLaVA-1.5's "pad" aspect mode: the image is padded to a square with the mean colour,
centred, then resized to the tower's input size (bicubic) and normalised with the CLIP mean and std;
the result is a CHW float32 array.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from litdata.images.file import RASTER_FORMATS

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageSpec:
    size: int = 336
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    pad_to_square: bool = True  # False: stretch to size x size
    max_pixels: int = 64_000_000  # refuse larger images before decoding them (decompression bombs)

    def __post_init__(self) -> None:
        if self.size <= 0 or len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"invalid ImageSpec: {self}")


def preprocess(data: bytes, spec: ImageSpec) -> np.ndarray:
    """Encoded image bytes -> float32 [3, size, size]. Raises ValueError on undecodable or oversized images.

    Only the compiler's raster formats are opened: Pillow's EPS/PS plugins would run Ghostscript on shard
    bytes that claim to be PostScript."""
    rgb = _decode(data, spec)
    if spec.pad_to_square:
        rgb = _expand_to_square(rgb, tuple(int(m * 255) for m in spec.mean))
    return _normalise(rgb, spec)


def preprocess_tiles(data: bytes, spec: ImageSpec, rule) -> list[np.ndarray]:
    """Encoded image bytes -> its tiles under a `litdata.images.tokens.tiles.TileRule`, each float32
    [3, size, size], as InternVL's `dynamic_preprocess` cuts them: the image resized to the grid's
    (columns x tile, rows x tile), cut row by row, then the whole image as a thumbnail when there is more than
    one tile. The grid is the one the compiler counted, from the same size."""
    rgb = _decode(data, spec)
    cols, rows = rule.grid(*rgb.size)
    t = rule.tile
    grid = rgb.resize((cols * t, rows * t), Image.Resampling.BICUBIC)
    tiles = [grid.crop(((i % cols) * t, (i // cols) * t, (i % cols + 1) * t, (i // cols + 1) * t))
             for i in range(cols * rows)]
    if rule.thumbnail and cols * rows != 1:
        tiles.append(rgb.resize((t, t), Image.Resampling.BICUBIC))
    return [_normalise(tile, spec) for tile in tiles]


def _decode(data: bytes, spec: ImageSpec) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=RASTER_FORMATS) as img:
                if img.width * img.height > spec.max_pixels:
                    raise ValueError(f"{img.width}x{img.height} exceeds {spec.max_pixels} pixels")
                rgb = img.convert("RGB")
        except ValueError:
            raise
        except Image.UnidentifiedImageError:
            raise ValueError(f"undecodable image (not one of {', '.join(RASTER_FORMATS)})") from None
        # Pillow raises many types for bad data (OSError, SyntaxError, struct.error, ...); every one of them must
        # reach the caller as ValueError so that skip_corrupt can skip the shard.
        except Exception as exn:  # noqa: BLE001
            raise ValueError(f"undecodable image ({type(exn).__name__}: {exn})") from None
    return rgb


def _normalise(rgb: Image.Image, spec: ImageSpec) -> np.ndarray:
    rgb = rgb.resize((spec.size, spec.size), Image.Resampling.BICUBIC)
    pixels = np.asarray(rgb, dtype=np.float32) * np.float32(1.0 / 255.0)
    pixels -= np.asarray(spec.mean, dtype=np.float32)
    pixels /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _expand_to_square(img: Image.Image, fill: tuple[int, ...]) -> Image.Image:
    # Same placement as LLaVA's expand2square: the image is centred, the rest is the mean colour.
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new("RGB", (side, side), fill)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out
