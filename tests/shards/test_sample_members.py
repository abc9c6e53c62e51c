"""Per-image members are checked once, in `litdata.shards.reader`, for verify, inspect and every adapter."""

from __future__ import annotations

import numpy as np
import pytest

from litdata.shards.reader import FormatProblem, image_tile_counts, image_token_counts

TILES = np.array([1, 5], dtype=np.int32)


def test_tile_counts_are_one_per_image_when_present():
    assert image_tile_counts({"image_tiles.npy": TILES}, 2).tolist() == [1, 5]
    assert image_tile_counts({}, 2) is None  # a rule without tiles stores none


def test_a_tiling_rule_needs_the_tile_counts_of_a_sample_with_images():
    with pytest.raises(FormatProblem, match=r"image_tiles.npy: missing \(2 images, rule tiles:336\)"):
        image_tile_counts({}, 2, "tiles:336")
    assert image_tile_counts({}, 0, "tiles:336") is None  # no images, nothing to count


@pytest.mark.parametrize("tiles, message", [
    (TILES[:1], "1 tile counts for 2 images"),
    (TILES.astype(np.int64), r"dtype int64\[2\], expected int32\[2\]"),
    (TILES.reshape(2, 1), r"dtype int32\[2, 1\]"),
])
def test_wrong_tile_counts_are_named(tiles, message):
    with pytest.raises(FormatProblem, match=message):
        image_tile_counts({"image_tiles.npy": tiles}, 2)


def test_format_1_images_take_the_fixed_count_and_format_2_needs_the_member():
    assert image_token_counts({}, 2, 576).tolist() == [576, 576]
    with pytest.raises(FormatProblem, match="image_tokens.npy: missing"):
        image_token_counts({}, 2, None)
