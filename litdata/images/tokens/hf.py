"""`processor:DIR`: count what a local Hugging Face processor folder puts in `input_ids` for each image.

transformers itself is not needed: the counting formulas of the supported processors are implemented here from
their configs (`processor_config.json`, `preprocessor_config.json`), and the tests check them against
transformers' own processors on a sweep of image sizes. Supported processor types (others are refused):
- `llava` (LlavaProcessor): (crop / patch)^2 + num_additional_image_tokens, minus 1 under the "default"
  feature-select strategy (the CLS token is dropped); the same for every image;
- `llava_next` (LlavaNextProcessor): anyres: the grid pinpoint `select_best_resolution` picks, its patches'
  features unpadded to the image's aspect ratio, one newline token per feature row, plus the base image;
- `qwen2_vl`, `qwen2_5_vl` (Qwen2VLProcessor, Qwen2_5_VLProcessor): `smart_resize` to multiples of
  patch x merge within [min_pixels, max_pixels], then one token per merge x merge patches.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litdata.images.tokens import ImageCount, RuleError

SUPPORTED = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl")
_BY_CLASS = {
    "LlavaProcessor": "llava", "LlavaNextProcessor": "llava_next",
    "Qwen2VLProcessor": "qwen2_vl", "Qwen2_5_VLProcessor": "qwen2_5_vl",
}


def select_best_resolution(height: int, width: int, pinpoints: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """transformers' `select_best_resolution`: the (height, width) pinpoint that keeps the most of the image's
    resolution when it is scaled to fit, then wastes the least."""
    best, best_effective, best_wasted = pinpoints[0], 0, float("inf")
    for ph, pw in pinpoints:
        scale = min(pw / width, ph / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        wasted = pw * ph - effective
        if effective > best_effective or (effective == best_effective and wasted < best_wasted):
            best, best_effective, best_wasted = (ph, pw), effective, wasted
    return best


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's `smart_resize`: sides rounded to multiples of `factor`, pixels within [min_pixels, max_pixels]."""
    if max(height, width) / min(height, width) > 200:
        raise RuleError(f"aspect ratio {max(height, width) / min(height, width):.0f} > 200, which Qwen2-VL refuses")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True, kw_only=True)
class ProcessorRule:
    """One supported processor type with the parameters its count depends on (all recorded in the manifest)."""

    type: str
    path: str
    patch_size: int
    # llava / llava_next: the processed (height, width) of the base image and of each anyres patch
    crop: tuple[int, int] = (0, 0)
    num_additional_image_tokens: int = 0
    drop_cls: bool = False  # vision_feature_select_strategy == "default"
    pinpoints: tuple[tuple[int, int], ...] = ()
    # qwen2_vl / qwen2_5_vl
    merge_size: int = 2
    min_pixels: int = 0
    max_pixels: int = 0

    @property
    def spec(self) -> str:
        return f"processor:{self.type}"

    @property
    def fixed(self) -> int | None:
        return self._llava() if self.type == "llava" else None

    @property
    def tiled(self) -> bool:
        return False

    def count(self, width: int, height: int) -> ImageCount:
        if width <= 0 or height <= 0:
            raise RuleError(f"image size {width}x{height} has no area")
        if self.type == "llava":
            return ImageCount(self._llava(), 1)
        if self.type == "llava_next":
            return ImageCount(self._llava_next(height, width), 1)
        h, w = smart_resize(height, width, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)
        return ImageCount((h // self.patch_size) * (w // self.patch_size) // self.merge_size**2, 1)

    def _llava(self) -> int:
        n = (self.crop[0] // self.patch_size) * (self.crop[1] // self.patch_size) + self.num_additional_image_tokens
        return n - 1 if self.drop_cls else n

    def _llava_next(self, orig_h: int, orig_w: int) -> int:
        """LlavaNextProcessor._get_number_of_features with _get_unpadded_features, step for step."""
        height, width = self.crop
        best_h, best_w = select_best_resolution(orig_h, orig_w, self.pinpoints)
        scale_h, scale_w = best_h // height, best_w // width
        patches_h, patches_w = height // self.patch_size, width // self.patch_size
        cur_h, cur_w = patches_h * scale_h, patches_w * scale_w
        if orig_w / orig_h > cur_w / cur_h:
            new_h = int(round(orig_h * (cur_w / orig_w), 7))
            cur_h -= ((cur_h - new_h) // 2) * 2
        else:
            new_w = int(round(orig_w * (cur_h / orig_h), 7))
            cur_w -= ((cur_w - new_w) // 2) * 2
        n = cur_h * cur_w + cur_h + patches_h * patches_w + self.num_additional_image_tokens
        return n - 1 if self.drop_cls else n

    def to_json(self) -> dict[str, Any]:
        return {"kind": "processor", "type": self.type, "path": self.path, "patch_size": self.patch_size,
                "crop": list(self.crop), "num_additional_image_tokens": self.num_additional_image_tokens,
                "drop_cls": self.drop_cls, "pinpoints": [list(p) for p in self.pinpoints],
                "merge_size": self.merge_size, "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}


def processor_rule_from_json(d: dict[str, Any]) -> ProcessorRule:
    try:
        return ProcessorRule(type=d["type"], path=d["path"], patch_size=int(d["patch_size"]),
                             crop=(int(d["crop"][0]), int(d["crop"][1])),
                             num_additional_image_tokens=int(d["num_additional_image_tokens"]),
                             drop_cls=bool(d["drop_cls"]), pinpoints=tuple((int(h), int(w)) for h, w in d["pinpoints"]),
                             merge_size=int(d["merge_size"]), min_pixels=int(d["min_pixels"]),
                             max_pixels=int(d["max_pixels"]))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise RuleError(f"manifest: image_token_processor is incomplete ({e!r})") from None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RuleError(f"{path}: cannot read ({e})") from None
    if not isinstance(d, dict):
        raise RuleError(f"{path}: not a JSON object")
    return d


def _processed_size(ip: dict[str, Any], where: str) -> tuple[int, int]:
    """(height, width) of the base image after resize and center crop, as the LLaVA image processors make it."""
    crop, size = ip.get("crop_size"), ip.get("size")
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if ip.get("do_center_crop", True) and isinstance(crop, dict) and "height" in crop:
        return int(crop["height"]), int(crop["width"])
    if isinstance(size, dict) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise RuleError(f"{where}: without a center crop or a fixed height and width the processed size depends on "
                    "resize rounding, which is not supported")


def _processor_type(proc: dict[str, Any], ip: dict[str, Any], folder: Path) -> str:
    cls = proc.get("processor_class") or ip.get("processor_class")
    if cls is None:
        cls = _read_json(folder / "tokenizer_config.json").get("processor_class")
    if cls in _BY_CLASS:
        return _BY_CLASS[cls]
    image_cls = str(ip.get("image_processor_type", ""))
    if cls is None and image_cls.startswith("LlavaNextImageProcessor"):
        return "llava_next"
    if cls is None and image_cls.startswith("Qwen2VLImageProcessor"):
        return "qwen2_vl"
    raise RuleError(f"processor:{folder}: processor {cls or image_cls or 'of unknown type'} is not supported "
                    f"(supported: {', '.join(SUPPORTED)})")


def load_processor_rule(arg: str) -> ProcessorRule:
    folder = Path(arg)
    if not folder.is_dir():
        raise RuleError(f"processor:{arg}: no such folder")
    proc = _read_json(folder / "processor_config.json")
    # transformers 5 may save the image processor inside processor_config.json instead of its own file.
    ip = _read_json(folder / "preprocessor_config.json") or dict(proc.get("image_processor") or {})
    if not ip:
        raise RuleError(f"processor:{arg}: no preprocessor_config.json (nor an image_processor in "
                        "processor_config.json)")
    kind = _processor_type(proc, ip, folder)
    where = f"processor:{arg} ({kind})"
    try:
        if kind in ("llava", "llava_next"):
            if proc.get("patch_size") is None:
                raise RuleError(f"{where}: processor_config.json has no patch_size")
            pinpoints = tuple((int(h), int(w)) for h, w in ip.get("image_grid_pinpoints") or ())
            if kind == "llava_next" and not pinpoints:
                raise RuleError(f"{where}: preprocessor config has no image_grid_pinpoints")
            return ProcessorRule(type=kind, path=str(arg), patch_size=int(proc["patch_size"]),
                                 crop=_processed_size(ip, where),
                                 num_additional_image_tokens=int(proc.get("num_additional_image_tokens") or 0),
                                 drop_cls=proc.get("vision_feature_select_strategy") == "default",
                                 pinpoints=pinpoints)
        size = ip.get("size") or {}
        min_pixels = ip.get("min_pixels") or size.get("shortest_edge") or 56 * 56
        max_pixels = ip.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280
        if ip.get("do_resize") is False:
            raise RuleError(f"{where}: do_resize=false is not supported (sizes must be multiples of the patch)")
        return ProcessorRule(type=kind, path=str(arg), patch_size=int(ip.get("patch_size") or 14),
                             merge_size=int(ip.get("merge_size") or 2), min_pixels=int(min_pixels),
                             max_pixels=int(max_pixels))
    except (TypeError, ValueError) as e:
        if isinstance(e, RuleError):
            raise
        raise RuleError(f"{where}: unexpected config value ({e})") from None
