"""InternVL / Megatron-LM dynamic tiling: an image becomes a grid of `tile` x `tile` tiles (between `min` and `max`
of them) whose aspect ratio is closest to the image's, plus a thumbnail when the grid has more than one tile.

`closest_grid` follows InternVL's `find_closest_aspect_ratio` / `dynamic_preprocess` and Megatron-LM's copy in
`examples/multimodal/image_processing.py` step for step, including the candidate order (a set sorted by tile
count, so ties between grids of equal count resolve exactly as theirs do) and the tie rule (a later grid with
the same aspect-ratio difference wins when the image's area exceeds half of that grid's pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from litdata.images.tokens import ImageCount, RuleError

_KEYS = ("tile", "max", "min", "thumbnail", "per_tile")


@lru_cache(maxsize=64)
def candidate_grids(min_num: int, max_num: int) -> tuple[tuple[int, int], ...]:
    """(columns, rows) with min_num <= columns x rows <= max_num, in InternVL's order."""
    ratios = set(
        (i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    )
    return tuple(sorted(ratios, key=lambda x: x[0] * x[1]))


def closest_grid(width: int, height: int, *, tile: int, min_num: int, max_num: int) -> tuple[int, int]:
    aspect_ratio = width / height
    best_diff, best = float("inf"), (1, 1)
    area = width * height
    for cols, rows in candidate_grids(min_num, max_num):
        diff = abs(aspect_ratio - cols / rows)
        if diff < best_diff:
            best_diff, best = diff, (cols, rows)
        elif diff == best_diff and area > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


@dataclass(frozen=True, kw_only=True)
class TileRule:
    tile: int = 448
    max: int = 12
    min: int = 1
    thumbnail: bool = True
    per_tile: int = 256

    @property
    def spec(self) -> str:
        return (f"tiles:tile={self.tile},max={self.max},min={self.min},thumbnail={int(self.thumbnail)},"
                f"per_tile={self.per_tile}")

    @property
    def fixed(self) -> None:
        return None

    @property
    def tiled(self) -> bool:
        return True

    def grid(self, width: int, height: int) -> tuple[int, int]:
        if width <= 0 or height <= 0:
            raise RuleError(f"image size {width}x{height} has no area")
        return closest_grid(width, height, tile=self.tile, min_num=self.min, max_num=self.max)

    def count(self, width: int, height: int) -> ImageCount:
        cols, rows = self.grid(width, height)
        tiles = cols * rows + (1 if self.thumbnail and cols * rows != 1 else 0)
        return ImageCount(tiles * self.per_tile, tiles)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "tiles", **{k: int(getattr(self, k)) for k in _KEYS}}


def parse_tiles(arg: str) -> TileRule:
    """`tile=448,max=12,min=1,thumbnail=1,per_tile=256`; keys may be left out (these are the defaults)."""
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in arg.split(","))):
        key, sep, raw = part.partition("=")
        if not sep or key not in _KEYS:
            raise RuleError(f"tiles:{arg}: {part!r} is not KEY=N with KEY one of {', '.join(_KEYS)}")
        try:
            values[key] = int(raw)
        except ValueError:
            raise RuleError(f"tiles:{arg}: {key}={raw!r} is not an integer") from None
    rule = TileRule(**{k: (bool(v) if k == "thumbnail" else v) for k, v in values.items()})
    if min(rule.tile, rule.min, rule.per_tile) <= 0 or rule.max < rule.min:
        raise RuleError(f"tiles:{arg}: needs tile, min, per_tile > 0 and max >= min")
    return rule
