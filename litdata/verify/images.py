"""`litdata verify`'s check of the per-image members (format 2): KEY.image_tokens.npy has one count per image and
each count is the manifest's rule applied to the image's size, read from its header; KEY.image_tiles.npy likewise
for tiling rules. Format 1 shards have no such members: every image takes the manifest's fixed count."""

from __future__ import annotations

import io
import warnings

import numpy as np

from litdata.images.tokens import RuleError
from litdata.shards import reader as shard_reader
from litdata.shards.manifest import Manifest
from litdata.shards.schema import IMAGE_ARRAYS, IMAGE_TOKENS


def _size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header (Pillow reads no pixels until asked); None if unreadable."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:  # noqa: BLE001 - any unreadable header is reported as such, never raised
        return None


def image_counts(m: dict[str, bytes], image_bytes: list[bytes] | None, n_img: int, manifest: Manifest) -> np.ndarray:
    """The sample's per-image counts, checked. Raises FormatProblem for the first thing wrong.
    `image_bytes`: the image members in placeholder order, or None when they do not match the placeholders
    (already reported), so that only the member's own shape is checked."""
    arrays = {s: shard_reader.load_array(s, m[s]) for s in IMAGE_ARRAYS if s in m}
    if n_img and manifest.image_token_rule is not None and IMAGE_TOKENS not in arrays:
        raise shard_reader.FormatProblem(IMAGE_TOKENS, f"missing ({n_img} images)")
    counts = shard_reader.image_token_counts(arrays, n_img, manifest.fixed_image_tokens)
    try:
        rule = manifest.image_rule()
    except RuleError as e:
        raise shard_reader.FormatProblem(IMAGE_TOKENS, f"cannot recompute: {e}") from None
    tiles = shard_reader.image_tile_counts(arrays, n_img, rule.spec if rule.tiled else None)
    if rule.fixed is not None:
        bad = np.flatnonzero(counts != rule.fixed)
        if len(bad):
            raise shard_reader.FormatProblem("image_tokens.npy", f"image {int(bad[0])} has {int(counts[bad[0]])} "
                                                                 f"tokens, rule {rule.spec} gives {rule.fixed}")
        return counts
    for i, data in enumerate(image_bytes or ()):
        size = _size(data)
        if size is None:
            raise shard_reader.FormatProblem(f"img{i:03d}", "image header unreadable: count not recomputable")
        try:
            want = rule.count(*size)
        except RuleError as e:
            raise shard_reader.FormatProblem("image_tokens.npy", f"image {i} ({size[0]}x{size[1]}): {e}") from None
        if int(counts[i]) != want.tokens:
            raise shard_reader.FormatProblem("image_tokens.npy", f"image {i} ({size[0]}x{size[1]}) has "
                                                                 f"{int(counts[i])} tokens, rule {rule.spec} gives {want.tokens}")
        if tiles is not None and int(tiles[i]) != want.tiles:
            raise shard_reader.FormatProblem("image_tiles.npy", f"image {i} ({size[0]}x{size[1]}) has "
                                                                f"{int(tiles[i])} tiles, rule {rule.spec} gives {want.tiles}")
    return counts
