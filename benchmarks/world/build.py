"""Build the bundled demo: LLaVA JSON with planted bad records, a JSONL of other shapes, images, ground truth,
and the tokenizer. Everything is a function of fixed seeds, so a rebuild gives byte-identical files."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

from benchmarks.world.chat_sources import long_answer
from benchmarks.world.generate import GeneratedRecord, ImagePool, default_pool_size, generate_records, ground_truth
from benchmarks.world.scene import encode_image
from benchmarks.world.tokenizer_build import save_hf, train_tokenizer
from litdata.records.reject import RejectReason

DEMO_SEED = 665
DEMO_RECORDS = 320
TOKENIZER_TRAIN_RECORDS = 4000
TOKENIZER_TRAIN_SEED = 7
MAIN_FILE = "llava_demo.json"
EXTRA_FILE = "extra.jsonl"
BROKEN_IMAGE = "coco/broken_000000.png"
SYSTEM_PROMPT = "You are a careful assistant that describes simple drawings accurately."


def _bad_records(pool: ImagePool) -> list[tuple[dict, RejectReason]]:
    """One record per failure the reader must catch; each names a real pool image unless the image is the fault."""
    good_image = pool.path("coco", 0)
    q = "<image>\nWhat shapes are drawn in the upper half of this picture?"
    rng = random.Random(f"litdata-demo-bad:{DEMO_SEED}")
    return [
        (
            {
                "id": "bad-image-missing",
                "image": "coco/missing_999999.png",
                "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "A circle and a star."}],
            },
            RejectReason.IMAGE_MISSING,
        ),
        (
            {
                "id": "bad-image-count",
                "image": good_image,
                "conversations": [
                    {"from": "human", "value": "<image>\n<image>\nHow do these two pictures differ in color?"},
                    {"from": "gpt", "value": "Only one picture was given."},
                ],
            },
            RejectReason.IMAGE_COUNT_MISMATCH,
        ),
        (
            {
                "id": "bad-empty-turn",
                "image": good_image,
                "conversations": [
                    {"from": "human", "value": "<image>\nWhich shape is closest to the bottom edge here?"},
                    {"from": "gpt", "value": ""},
                ],
            },
            RejectReason.EMPTY_TURN,
        ),
        (
            {
                "id": "bad-gpt-first",
                "image": good_image,
                "conversations": [
                    {"from": "gpt", "value": "Hello, what would you like to know?"},
                    {"from": "human", "value": "<image>\nWhat color is the largest shape in the corner?"},
                ],
            },
            RejectReason.ROLES_OUT_OF_ORDER,
        ),
        (
            {
                "id": "bad-two-humans",
                "image": good_image,
                "conversations": [
                    {"from": "human", "value": "<image>\nIs anything drawn in the very middle of this scene?"},
                    {"from": "human", "value": "And what about the lower right corner of it?"},
                    {"from": "gpt", "value": "Yes."},
                ],
            },
            RejectReason.ROLES_OUT_OF_ORDER,
        ),
        (
            {
                "id": "bad-image-undecodable",
                "image": BROKEN_IMAGE,
                "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "A square."}],
            },
            RejectReason.IMAGE_UNDECODABLE,
        ),
        (
            {
                "id": "bad-too-long",
                "conversations": [
                    {
                        "from": "human",
                        "value": "Could you write a very long essay about the history of ocean currents for my book club?",
                    },
                    {"from": "gpt", "value": long_answer(rng, "ocean currents", "my book club", 3000)},
                ],
            },
            RejectReason.TOO_LONG,
        ),
    ]


def _main_records(good: list[GeneratedRecord], bad: list[tuple[dict, RejectReason]]) -> tuple[list[dict], list[dict]]:
    """Interleave the bad records at fixed, spread-out positions; return the array and the expected rejects."""
    records = [g.record for g in good]
    expected = []
    step = len(records) // (len(bad) + 1)
    for k, (rec, reason) in enumerate(bad):
        index = step * (k + 1) + k
        records.insert(index, rec)
        expected.append({"file": MAIN_FILE, "index": index, "id": rec["id"], "reason": reason.value})
    return records, expected


def _to_messages(rec: dict, *, parts: bool, system: str | None) -> dict:
    """OpenAI-style row; with `parts`, user content is a list of text/image parts instead of a string with <image>."""
    images = rec.get("image")
    images = [images] if isinstance(images, str) else list(images or [])
    messages = [{"role": "system", "content": system}] if system else []
    for turn in rec["conversations"]:
        role = "user" if turn["from"] == "human" else "assistant"
        text = turn["value"]
        if parts and role == "user":
            content = [{"type": "image", "image": images.pop(0)} for _ in range(text.count("<image>"))]
            content.append({"type": "text", "text": text.replace("<image>\n", "").replace("\n<image>", "").strip()})
            messages.append({"role": role, "content": content})
        else:
            messages.append({"role": role, "content": text})
    row = {"id": rec["id"], "messages": messages}
    if not parts and images:
        row["images"] = images
    return row


def _pick_extra(pool: ImagePool) -> tuple[list[GeneratedRecord], list[GeneratedRecord]]:
    """The next records of the demo stream after the main file: 5 with images, 3 text-only."""
    image_recs: list[GeneratedRecord] = []
    text_recs: list[GeneratedRecord] = []
    for g in generate_records(10 * DEMO_RECORDS, DEMO_SEED, pool=pool, start=DEMO_RECORDS):
        bucket = image_recs if "image" in g.record else text_recs
        if len(bucket) < (5 if bucket is image_recs else 3):
            bucket.append(g)
        if len(image_recs) == 5 and len(text_recs) == 3:
            break
    return image_recs, text_recs


def _extra_lines(image_recs: list[GeneratedRecord], text_recs: list[GeneratedRecord]) -> tuple[list[str], list[dict]]:
    rows: list[dict] = []
    for g in (image_recs[0], text_recs[0]):  # ShareGPT rows with a system turn
        rows.append(
            {**g.record, "conversations": [{"from": "system", "value": SYSTEM_PROMPT}] + g.record["conversations"]}
        )
    rows.append(_to_messages(text_recs[1].record, parts=False, system=SYSTEM_PROMPT))
    rows.append(_to_messages(text_recs[2].record, parts=False, system=None))
    rows.append(_to_messages(image_recs[1].record, parts=True, system=SYSTEM_PROMPT))
    rows.append(_to_messages(image_recs[2].record, parts=True, system=None))
    rows += [g.record for g in image_recs[3:5]]  # plain LLaVA rows in JSONL
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    bad_index = 4
    lines.insert(bad_index, '{"id": "bad-json", "conversations": [{"from": "human", "value": "unterminated')
    expected = [{"file": EXTRA_FILE, "index": bad_index, "id": None, "reason": RejectReason.INVALID_JSON.value}]
    return lines, expected


def _tokenizer_texts(records: list[dict], lines: list[str]) -> Iterator[str]:
    for rec in records:
        for turn in rec.get("conversations", []):
            yield turn["value"]
    yield from lines
    for g in generate_records(TOKENIZER_TRAIN_RECORDS, TOKENIZER_TRAIN_SEED):
        for turn in g.record["conversations"]:
            yield turn["value"]


def build_demo(out_root: Path) -> list[Path]:
    """Write data/ and tokenizer/ under out_root (replacing them); returns the files written."""
    data, tok_dir = out_root / "data", out_root / "tokenizer"
    for d in (data, tok_dir):
        if d.exists():
            shutil.rmtree(d)
    images = data / "images"
    images.mkdir(parents=True)
    pool = ImagePool(default_pool_size(DEMO_RECORDS), DEMO_SEED)
    written: list[Path] = []
    for rel, scene, fmt in pool.all_images():
        p = images / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode_image(scene, fmt))
        written.append(p)
    broken = images / BROKEN_IMAGE
    broken.write_bytes(b"this is not a PNG file, just text with a .png name\n" * 4)
    written.append(broken)

    good = list(generate_records(DEMO_RECORDS, DEMO_SEED, pool=pool))
    image_recs, text_recs = _pick_extra(pool)
    records, expected_main = _main_records(good, _bad_records(pool))
    lines, expected_extra = _extra_lines(image_recs, text_recs)
    main_path, extra_path, truth_path = data / MAIN_FILE, data / EXTRA_FILE, data / "ground_truth.json"
    main_path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    extra_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = ground_truth(good + image_recs + text_recs)
    truth["files"] = {MAIN_FILE: len(records), EXTRA_FILE: len(lines)}
    truth["bad_records"] = expected_main + expected_extra
    truth["multi_image_ids"] = [g.record["id"] for g in good if len(g.scenes) > 1]
    truth_path.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    written += [main_path, extra_path, truth_path]

    tok = train_tokenizer(_tokenizer_texts(records, lines))
    written += save_hf(tok, tok_dir)
    return written
