"""How many positions each image takes in the model: the `--image-tokens` rules (DESIGN.md, 'Image token rules').

A rule maps an image's size (from its header: no pixel is decoded) to its count of image tokens, and for tiling
rules to its count of tiles. Three kinds:
- `fixed:N` (or plain `N`): every image takes N positions (LLaVA-1.5: 576);
- `tiles:tile=448,max=12,min=1,thumbnail=1,per_tile=256`: InternVL / Megatron-LM dynamic tiling (tiles.py);
- `processor:DIR`: what a local Hugging Face processor folder puts in `input_ids` for the image (hf.py).
Rules are frozen dataclasses: they travel to the encoding workers by pickling (the compiler's own objects only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class RuleError(ValueError):
    """A rule that cannot be parsed or loaded (a usage error), or an image a rule cannot count."""


class ImageCount(NamedTuple):
    tokens: int  # positions the image takes once expanded
    tiles: int  # tiles the model encodes (thumbnail included); 1 for rules without tiles


class ImageTokenRule(Protocol):
    spec: str  # the manifest's config.image_token_rule

    @property
    def fixed(self) -> int | None:
        """The count of every image, for rules that do not depend on the image; None otherwise."""

    @property
    def tiled(self) -> bool:
        """Whether shards carry KEY.image_tiles.npy."""

    def count(self, width: int, height: int) -> ImageCount: ...

    def to_json(self) -> dict[str, Any]:
        """What the manifest records so that `verify` can recompute counts without the processor folder."""


@dataclass(frozen=True, kw_only=True)
class FixedRule:
    tokens: int

    @property
    def spec(self) -> str:
        return f"fixed:{self.tokens}"

    @property
    def fixed(self) -> int:
        return self.tokens

    @property
    def tiled(self) -> bool:
        return False

    def count(self, width: int, height: int) -> ImageCount:
        return ImageCount(self.tokens, 1)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "fixed", "tokens": self.tokens}


def parse_rule(text: str) -> ImageTokenRule:
    """`--image-tokens` -> a rule. Raises RuleError with the reason."""
    from litdata.images.tokens.hf import load_processor_rule
    from litdata.images.tokens.tiles import parse_tiles

    text = text.strip()
    kind, sep, arg = text.partition(":")
    if not sep:
        kind, arg = "fixed", text
    if kind == "fixed":
        try:
            n = int(arg)
        except ValueError:
            raise RuleError(f"--image-tokens {text!r}: expected N, fixed:N, tiles:... or processor:DIR") from None
        if n <= 0:
            raise RuleError(f"--image-tokens {text!r}: the count must be > 0")
        return FixedRule(tokens=n)
    if kind == "tiles":
        return parse_tiles(arg)
    if kind == "processor":
        return load_processor_rule(arg)
    raise RuleError(f"--image-tokens {text!r}: unknown rule {kind!r} (valid: fixed:N, tiles:..., processor:DIR)")


def rule_from_config(config: dict[str, Any]) -> ImageTokenRule:
    """The rule a manifest's config records: format 1 has only `image_tokens`; format 2 adds `image_token_rule`
    and, for processor rules, `image_token_processor` (the parameters the counts depend on)."""
    from litdata.images.tokens.hf import processor_rule_from_json
    from litdata.images.tokens.tiles import parse_tiles

    spec = config.get("image_token_rule")
    if spec is None:
        return FixedRule(tokens=int(config.get("image_tokens") or 1))
    kind, _, arg = str(spec).partition(":")
    if kind == "fixed":
        return FixedRule(tokens=int(arg))
    if kind == "tiles":
        return parse_tiles(arg)
    if kind == "processor":
        return processor_rule_from_json(config.get("image_token_processor") or {})
    raise RuleError(f"manifest: unknown image_token_rule {spec!r}")
