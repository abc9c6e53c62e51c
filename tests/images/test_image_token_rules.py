"""Image token rules: the counts equal what transformers' own processors put in `input_ids` (processors built
from config objects, with a tiny local tokenizer: nothing is downloaded), and the tile rule equals a direct
implementation of InternVL's dynamic tiling."""

from __future__ import annotations

from pathlib import Path

import pytest

from litdata.images.tokens import FixedRule, RuleError, parse_rule, rule_from_config
from litdata.images.tokens.tiles import TileRule

# (width, height): tiny, square, very wide, very tall, huge, and a few odd ones
SIZES = [(1, 1), (5, 3), (14, 14), (336, 336), (640, 480), (480, 640), (1000, 1000), (2000, 60), (60, 2000),
         (4000, 3000), (3000, 4001), (1234, 567)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import PreTrainedTokenizerFast

    from litdata.demo import DEMO_TOKENIZER_DIR

    tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(DEMO_TOKENIZER_DIR) / "tokenizer.json"))
    tok.add_special_tokens({"additional_special_tokens": ["<image>", "<|image_pad|>", "<|video_pad|>"]})
    tok.image_token, tok.video_token = "<image>", "<|video_pad|>"
    return tok


def _expanded(processor, token: str, width: int, height: int) -> int:
    from PIL import Image

    image = Image.new("RGB", (width, height), (120, 30, 200))
    out = processor(text=[f"a {token} b"], images=[image], return_tensors="np")
    return int((out["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids(token)).sum())


def _llava(tokenizer, strategy: str, extra: int):
    from transformers import CLIPImageProcessor, LlavaProcessor

    ip = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    return LlavaProcessor(image_processor=ip, tokenizer=tokenizer, patch_size=14,
                          vision_feature_select_strategy=strategy, num_additional_image_tokens=extra)


def _llava_next(tokenizer):
    from transformers import LlavaNextImageProcessor, LlavaNextProcessor

    ip = LlavaNextImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                 image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]])
    return LlavaNextProcessor(image_processor=ip, tokenizer=tokenizer, patch_size=14,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)


def _qwen(tokenizer, cls_name: str, path: Path, monkeypatch):
    """A Qwen2-VL processor without its video processor (that one needs torchvision, which this project does not
    install): the class check for it is skipped. The folder is written as released checkpoints have it."""
    import json

    import transformers
    from transformers.processing_utils import ProcessorMixin

    try:  # transformers 5: the PIL backend (the default one needs torchvision)
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    except ImportError:
        from transformers import Qwen2VLImageProcessor as Qwen2VLImageProcessorPil

    check = ProcessorMixin.check_argument_for_proper_class
    monkeypatch.setattr(ProcessorMixin, "check_argument_for_proper_class",
                        lambda self, name, arg: None if name == "video_processor" else check(self, name, arg))
    monkeypatch.setattr(tokenizer, "image_token", "<|image_pad|>")
    ip = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    proc = getattr(transformers, cls_name)(image_processor=ip, tokenizer=tokenizer, video_processor=None)
    ip.save_pretrained(path)
    (path / "processor_config.json").write_text(json.dumps({"processor_class": cls_name}))
    return proc


def _saved(processor, path: Path):
    processor.save_pretrained(path)
    return parse_rule(f"processor:{path}")


@pytest.mark.parametrize("strategy,extra", [("default", 1), ("full", 0)])
def test_llava_counts_equal_llava_processor_expansion(tokenizer, tmp_path, strategy, extra):
    proc = _llava(tokenizer, strategy, extra)
    rule = _saved(proc, tmp_path)
    assert rule.spec == "processor:llava" and rule.fixed == 576
    for w, h in SIZES[2:]:
        assert rule.count(w, h).tokens == _expanded(proc, "<image>", w, h), (w, h)


def test_llava_next_counts_equal_llava_next_processor_expansion(tokenizer, tmp_path):
    proc = _llava_next(tokenizer)
    rule = _saved(proc, tmp_path)
    assert rule.spec == "processor:llava_next" and rule.fixed is None
    counts = {}
    for w, h in SIZES[2:]:
        counts[w, h] = rule.count(w, h).tokens
        assert counts[w, h] == _expanded(proc, "<image>", w, h), (w, h)
    assert len(set(counts.values())) > 3  # the sweep exercises different grids and unpadding


@pytest.mark.parametrize("cls_name", ["Qwen2VLProcessor", "Qwen2_5_VLProcessor"])
def test_qwen_counts_equal_qwen_processor_expansion(tokenizer, tmp_path, cls_name, monkeypatch):
    proc = _qwen(tokenizer, cls_name, tmp_path, monkeypatch)
    rule = parse_rule(f"processor:{tmp_path}")
    assert rule.spec in ("processor:qwen2_vl", "processor:qwen2_5_vl")
    for w, h in SIZES:
        assert rule.count(w, h).tokens == _expanded(proc, "<|image_pad|>", w, h), (w, h)
    with pytest.raises(RuleError, match="aspect ratio"):
        rule.count(4000, 10)


def test_processor_rule_roundtrips_through_the_manifest(tokenizer, tmp_path):
    rule = _saved(_llava_next(tokenizer), tmp_path)
    again = rule_from_config({"image_token_rule": rule.spec, "image_token_processor": rule.to_json()})
    assert again == rule


def test_unsupported_processor_is_refused_with_the_supported_list(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text('{"image_processor_type": "SiglipImageProcessor"}')
    (tmp_path / "processor_config.json").write_text('{"processor_class": "PaliGemmaProcessor"}')
    with pytest.raises(RuleError, match="PaliGemmaProcessor is not supported .*llava, llava_next, qwen2_vl"):
        parse_rule(f"processor:{tmp_path}")
    with pytest.raises(RuleError, match="no such folder"):
        parse_rule(f"processor:{tmp_path / 'nope'}")


def _internvl_tiles(width: int, height: int, min_num: int, max_num: int, image_size: int, thumb: bool) -> int:
    """InternVL's dynamic_preprocess / find_closest_aspect_ratio, written out independently as the reference."""
    aspect = width / height
    ratios = sorted({(i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                     if min_num <= i * j <= max_num}, key=lambda x: x[0] * x[1])
    best_diff, best = float("inf"), (1, 1)
    for r in ratios:
        diff = abs(aspect - r[0] / r[1])
        if diff < best_diff:
            best_diff, best = diff, r
        elif diff == best_diff and width * height > 0.5 * image_size * image_size * r[0] * r[1]:
            best = r
    blocks = best[0] * best[1]
    return blocks + (1 if thumb and blocks != 1 else 0)


@pytest.mark.parametrize("spec", ["tiles:tile=448,max=12,min=1,thumbnail=1,per_tile=256",
                                  "tiles:tile=336,max=6,min=2,thumbnail=0,per_tile=144", "tiles:"])
def test_tile_rule_equals_internvl_dynamic_preprocess(spec):
    rule = parse_rule(spec)
    assert isinstance(rule, TileRule) and parse_rule(rule.spec) == rule
    for w, h in SIZES + [(896, 448), (448, 896), (1344, 448), (900, 900), (448, 448)]:
        tiles = _internvl_tiles(w, h, rule.min, rule.max, rule.tile, rule.thumbnail)
        assert rule.count(w, h) == (tiles * rule.per_tile, tiles), (spec, w, h)


def test_tile_examples():
    rule = parse_rule("tiles:tile=448,max=12,min=1,thumbnail=1,per_tile=256")
    assert rule.count(448, 448) == (256, 1)  # one tile: no thumbnail
    assert rule.count(896, 448) == (3 * 256, 3)  # 2x1 grid + thumbnail
    assert rule.count(4000, 100) == (13 * 256, 13)  # widest grid 12x1 + thumbnail


@pytest.mark.parametrize("text,expected", [("576", FixedRule(tokens=576)), ("fixed:16", FixedRule(tokens=16))])
def test_fixed_rule(text, expected):
    assert parse_rule(text) == expected and expected.count(9, 9) == (expected.tokens, 1)


@pytest.mark.parametrize("text", ["0", "fixed:x", "tiles:tile=0", "tiles:size=3", "tiles:max=1,min=2", "grid:4"])
def test_bad_rules_are_refused(text):
    with pytest.raises(RuleError):
        parse_rule(text)


def test_format_1_manifest_means_the_fixed_count():
    assert rule_from_config({"image_tokens": 576}) == FixedRule(tokens=576)
