"""The bundled demo: data, tokenizer, ground truth, and the generator behind them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from benchmarks.world.build import DEMO_RECORDS, DEMO_SEED
from benchmarks.world.generate import PLANTED_TEMPLATES, ImagePool, default_pool_size, generate_records
from benchmarks.world.lexicon import DETAIL_PROMPTS, LOCATION_PHRASES
from benchmarks.world.scene import COLORS, SHAPES
from litdata.demo import DEMO_DIR, DEMO_GROUND_TRUTH, DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR
from litdata.records.reject import RejectReason

REPO = Path(__file__).resolve().parents[2]
MAIN, EXTRA = DEMO_SOURCES


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(DEMO_GROUND_TRUTH.read_text())


@pytest.fixture(scope="module")
def demo_records() -> list[dict]:
    return json.loads(MAIN.read_text())


@pytest.fixture(scope="module")
def sample():
    return list(generate_records(3000, 0))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(DEMO_TOKENIZER_DIR, local_files_only=True)


def _images(rec: dict) -> list[str]:
    img = rec.get("image")
    return [] if img is None else [img] if isinstance(img, str) else img


def _close(rgb: tuple[int, ...], color: str, tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, COLORS[color]))


def test_demo_array_has_300_records_whose_images_exist_and_decode(demo_records, truth):
    bad_ids = {b["id"] for b in truth["bad_records"]}
    good = [r for r in demo_records if r["id"] not in bad_ids]
    assert len(demo_records) >= 300 and len(good) >= 300
    for rec in good:
        for rel in _images(rec):
            with Image.open(DEMO_IMAGE_ROOT / rel) as im:
                im.load()
        first = rec["conversations"][0]
        assert first["from"] == "human"
        assert first["value"].count("<image>") == len(_images(rec))
        assert all("<image>" not in t["value"] for t in rec["conversations"][1:])
    assert len(truth["multi_image_ids"]) >= 2
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total < 3_000_000


def test_bad_records_sit_where_the_ground_truth_says_with_valid_reasons(demo_records, truth):
    codes = {r.value for r in RejectReason}
    extra_lines = EXTRA.read_text().splitlines()
    reasons = Counter()
    for bad in truth["bad_records"]:
        assert bad["reason"] in codes
        reasons[bad["reason"]] += 1
        if bad["file"] == MAIN.name:
            assert demo_records[bad["index"]]["id"] == bad["id"]
        else:
            with pytest.raises(json.JSONDecodeError):
                json.loads(extra_lines[bad["index"]])
    assert set(reasons) == {
        "image_missing",
        "image_count_mismatch",
        "empty_turn",
        "roles_out_of_order",
        "image_undecodable",
        "too_long",
        "invalid_json",
    }
    by_id = {r["id"]: r for r in demo_records}
    assert not (DEMO_IMAGE_ROOT / by_id["bad-image-missing"]["image"]).exists()
    with (
        pytest.raises(UnidentifiedImageError),
        Image.open(DEMO_IMAGE_ROOT / by_id["bad-image-undecodable"]["image"]) as im,
    ):
        im.load()


def test_too_long_record_exceeds_2048_tokens_and_good_ones_fit(demo_records, tokenizer):
    lengths = {
        r["id"]: sum(len(tokenizer(t["value"], add_special_tokens=False).input_ids) for t in r["conversations"])
        for r in demo_records
    }
    assert lengths["bad-too-long"] > 2048
    assert max(v for k, v in lengths.items() if not k.startswith("bad-")) < 2048


def test_extra_jsonl_has_system_turns_and_openai_messages():
    rows = [json.loads(line) for line in EXTRA.read_text().splitlines() if not line.startswith('{"id": "bad-json"')]
    system_convs = [r for r in rows if "conversations" in r and r["conversations"][0]["from"] == "system"]
    messages = [r for r in rows if "messages" in r]
    parts = [r for r in messages if any(isinstance(m["content"], list) for m in r["messages"])]
    assert len(system_convs) == 2 and len(messages) == 4 and len(parts) == 2
    for r in parts:
        for m in r["messages"]:
            for p in m["content"] if isinstance(m["content"], list) else []:
                assert p["type"] in ("text", "image")
                if p["type"] == "image":
                    assert (DEMO_IMAGE_ROOT / p["image"]).is_file()


def test_tokenizer_loads_offline_and_splits_special_tokens_with_offsets(tokenizer):
    assert tokenizer.is_fast
    text = "<image>\nWhat color is the small star?</s><|im_start|>user"
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(enc.input_ids)
    assert tokens[0] == "<image>" and "</s>" in tokens and "<|im_start|>" in tokens
    assert enc.offset_mapping[0] == (0, len("<image>"))
    assert "".join(text[s:e] for s, e in enc.offset_mapping) == text
    assert tokenizer("hello there").input_ids == tokenizer("hello there", add_special_tokens=False).input_ids  # no BOS
    assert tokenizer.bos_token == "<s>" and tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"


def test_chat_template_renders_chatml_with_system_and_generation_prompt(tokenizer):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<image>\nWhat is drawn?"}]
    out = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert out == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nWhat is drawn?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_generator_is_deterministic():
    a = [g.record for g in generate_records(200, 5)]
    assert a == [g.record for g in generate_records(200, 5)]
    assert a != [g.record for g in generate_records(200, 6)]


def test_bundled_json_is_the_generator_output(demo_records):
    pool = ImagePool(default_pool_size(DEMO_RECORDS), DEMO_SEED)
    generated = {g.record["id"]: g.record for g in generate_records(DEMO_RECORDS, DEMO_SEED, pool=pool)}
    bundled = {r["id"]: r for r in demo_records if r["id"] in generated}
    assert bundled == generated


def test_planted_templates_are_frequent_and_ordinary_sentences_are_rare(sample):
    n = len(sample)
    template_records: Counter[str] = Counter()
    sentence_records: Counter[str] = Counter()
    for g in sample:
        templates, sentences = set(), set()
        for segs in g.human_segments:
            for s in segs:
                if s.template:
                    templates.add(s.template)
                elif not s.argument:  # template arguments are part of a template sentence
                    sentences.add(" ".join(s.text.lower().split()))
        template_records.update(templates)
        sentence_records.update(sentences)
    for t in PLANTED_TEMPLATES:
        assert template_records[t.name] >= 0.02 * n, t.name
    sentence, count = sentence_records.most_common(1)[0]
    assert count <= 0.005 * n, sentence
    for prompt in DETAIL_PROMPTS:
        assert 0 < sentence_records[prompt.lower()] < 0.005 * n


def test_ground_truth_template_sentences_match_their_patterns(truth):
    patterns = [re.compile(t["pattern"]) for t in truth["template_patterns"]]
    assert truth["templates"] == [t.text for t in PLANTED_TEMPLATES]
    for s in truth["template_sentences"]:
        assert any(p.match(s) for p in patterns), s
    for s in truth["informative"]:
        assert not any(p.match(s) for p in patterns), s
    assert all(count >= 0.02 * truth["records"] for count in truth["template_records"].values())


def test_questions_match_the_drawn_images():
    pool = ImagePool(default_pool_size(DEMO_RECORDS), DEMO_SEED)
    checked = Counter()
    for g in generate_records(DEMO_RECORDS, DEMO_SEED, pool=pool):
        if not g.scenes or g.scenes[0].style != "shapes":
            continue
        with Image.open(DEMO_IMAGE_ROOT / _images(g.record)[0]) as im:
            rgb = im.convert("RGB")
        scene = g.scenes[0]
        for segs, qa in zip(g.human_segments, g.qa):
            if qa is None or qa.target is None:
                continue
            shape = scene.shapes[qa.target]
            assert _close(rgb.getpixel(shape.center), shape.color)  # the metadata describes the pixels
            question = segs[0].text if not segs[0].template else segs[1].text
            if qa.kind == "color":
                assert qa.answer == shape.color  # and the question names the target by kind or by place
                assert shape.kind in question or any(p in question for p in LOCATION_PHRASES[shape.position])
                checked["color"] += 1
            elif qa.kind == "shape":
                assert qa.answer == shape.kind in SHAPES and shape.kind not in question
                checked["shape"] += 1
            elif qa.kind == "position":
                assert qa.answer == shape.position
                checked["position"] += 1
            elif qa.kind == "region_bbox":
                x0, y0, x1, y1 = json.loads(qa.answer)
                cx, cy = int((x0 + x1) / 2 * scene.width), int((y0 + y1) / 2 * scene.height)
                assert _close(rgb.getpixel((cx, cy)), shape.color)
                checked["bbox"] += 1
    assert min(checked.values()) >= 5 and len(checked) == 4


def test_make_demo_regenerates_byte_identical_assets(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_demo.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    bundled_root = DEMO_DIR.parent
    for sub in ("data", "tokenizer"):
        ours = sorted(p.relative_to(bundled_root) for p in (bundled_root / sub).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(tmp_path) for p in (tmp_path / sub).rglob("*") if p.is_file())
        assert ours == theirs
        for rel in ours:
            assert (bundled_root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
