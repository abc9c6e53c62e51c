"""Token ids and supervision equal the model's own training code, token for token, on real tokenizers.

References: `vicuna_v1` = LLaVA-1.5's `preprocess_v1` + `tokenizer_image_token` (the port in
benchmarks/baselines/llava.py, run with the real tokenizer's own `__call__`), under both `legacy` settings;
`llama3` and `auto` = Llama 3's `apply_chat_template(..., tokenize=True)`, supervision = each assistant message
plus `<|eot_id|>`; a `tokenizer.model`-only folder = SentencePiece's own ids. The tokenizers are vendored
(tests/fixtures/tokenizers/README.md), so nothing here downloads or skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.baselines.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LlavaPreprocessor
from benchmarks.bench_compile import text_only
from litdata.classes import class_weights
from litdata.encode import Encoder, EncodeSpec
from litdata.read import read_sources
from tests.helpers.compile import compile_cli, read_samples
from tests.helpers.real_tokenizers import llama2_folder, llama3_folder, sentencepiece_folder
from tests.helpers.realistic_records import realistic_records

N_RECORDS = 320

# Meta's current Llama 3 Instruct template: the vendored one (its first revision) adds the assistant header
# unconditionally; this one only under add_generation_prompt, which a training record does not ask for.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' "
    "+ message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The realistic records as a JSONL source, with the three images they name."""
    root = tmp_path_factory.mktemp("real_tok")
    images = root / "images"
    images.mkdir()
    for k in range(3):
        Image.new("RGB", (8, 8), (40 * k, 90, 0)).save(images / f"img{k}.png")
    records = realistic_records(N_RECORDS)
    src = root / "records.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return root, src, images, records


def encode(folder: Path, template: str, src: Path, images: Path | None):
    """litdata's documents for every record of `src`, in order (vit weights: exactly the supervised tokens)."""
    spec = EncodeSpec(tokenizer=str(folder), template=template, weights=class_weights("vit"), seq_len=1 << 20,
                      image_tokens=1, overflow="drop", image_root=str(images) if images else None,
                      max_pixels=1 << 24)
    enc = Encoder(spec)
    docs = enc.encode_batch(list(read_sources([str(src)])))
    return enc, docs


def assert_equals_llava(enc, docs, records, reference) -> dict:
    """ids and supervised positions of every document equal the LLaVA port's; returns what the records covered."""
    pre = LlavaPreprocessor(reference)
    seen = {"image": 0, "text_only": 0, "multi_turn": 0, "lone_space_answer_start": 0}
    for rec, doc in zip(records, docs, strict=True):
        ex = pre(rec)
        assert not ex.mismatch, rec["id"]
        ours = np.where(doc.tokens == enc.tokinfo.image_token_id, IMAGE_TOKEN_INDEX, doc.tokens)
        assert ours.tolist() == ex.input_ids.tolist(), rec["id"]
        assert np.flatnonzero(doc.weights > 0).tolist() == np.flatnonzero(ex.labels != IGNORE_INDEX).tolist(), rec["id"]
        seen["image" if "image" in rec else "text_only"] += 1
        seen["multi_turn"] += len(rec["conversations"]) > 2
        starts = np.flatnonzero(np.diff((doc.weights > 0).astype(np.int8)) == 1) + 1
        seen["lone_space_answer_start"] += any(reference.convert_ids_to_tokens(int(doc.tokens[k])) == "▁"
                                               for k in starts)
    return seen


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "non_legacy"])
def test_vicuna_v1_equals_llava_preprocess_v1(data, tmp_path, legacy):
    from transformers import AutoTokenizer

    _, src, images, records = data
    folder = llama2_folder(tmp_path / "tok", legacy=legacy)
    enc, docs = encode(folder, "vicuna_v1", src, images)
    seen = assert_equals_llava(enc, docs, records, AutoTokenizer.from_pretrained(str(folder)))
    # The records hold every case that broke before: images, text only, several rounds, and answers that start
    # with a digit, CJK or an emoji (a lone `▁` the answer's first token).
    assert seen["image"] >= 100 and seen["text_only"] >= 100 and seen["multi_turn"] >= 100
    assert seen["lone_space_answer_start"] >= 30


def test_the_legacy_flag_changes_the_ids_after_a_special_token(tmp_path):
    """So the two golden runs above check different tokenizations: `</s>USER` is `▁US`,`ER` only under legacy."""
    from transformers import AutoTokenizer

    got = {}
    for legacy in (True, False):
        tok = AutoTokenizer.from_pretrained(str(llama2_folder(tmp_path / str(legacy), legacy=legacy)))
        got[legacy] = tok.convert_ids_to_tokens(tok("a</s>USER:")["input_ids"])
    assert got[True][3:5] == ["▁US", "ER"] and got[False][3] == "USER"


class SentencePieceLlama:
    """transformers' slow legacy `LlamaTokenizer.__call__`, from the sentencepiece package alone: BOS, then each
    piece of text between `</s>` encoded by SentencePiece (the only special token in LLaVA's prompt text)."""

    def __init__(self, model: Path) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(model))
        self.bos_token_id, self.legacy, self.model_max_length = 1, True, 1 << 20

    def __call__(self, text: str) -> dict:
        ids = [self.bos_token_id]
        for k, piece in enumerate(text.split("</s>")):
            ids += ([2] if k else []) + (self.sp.encode(piece) if piece else [])
        return {"input_ids": ids}

    def convert_ids_to_tokens(self, i: int) -> str:
        return self.sp.id_to_piece(i)


def test_a_sentencepiece_only_folder_compiles_to_sentencepiece_ids(data, tmp_path):
    from transformers import AutoTokenizer

    root, src, images, records = data
    folder = sentencepiece_folder(tmp_path / "sp")
    reference = SentencePieceLlama(folder / "tokenizer.model")
    enc, docs = encode(folder, "vicuna_v1", src, images)
    seen = assert_equals_llava(enc, docs, records, reference)
    assert seen["lone_space_answer_start"] >= 30
    # transformers' own conversion of this model differs on these records (runs of spaces), so this is a
    # real difference between taking SentencePiece's ids and taking the converted tokenizer's.
    converted = AutoTokenizer.from_pretrained(str(folder))
    prompts = [t["value"] for r in records for t in r["conversations"]]
    assert sum(converted(p)["input_ids"] != reference(p)["input_ids"] for p in prompts) >= 20

    out = tmp_path / "out"
    assert compile_cli("compile", src, "--image-root", images, "--tokenizer", folder, "--out", out,
                       "--mode", "vit", "--no-progress") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    tok_info = manifest["config"]["tokenizer"]
    assert tok_info["backend"] == "sentencepiece" and tok_info["legacy"] is True
    by_id = {r["id"]: doc for r, doc in zip(records, docs)}
    compiled = 0
    for shard in sorted(out.glob("shard-*.tar")):
        for sample in read_samples(shard):
            cu = sample["cu_seqlens.npy"]
            for k, meta in enumerate(json.loads(sample["json"])["documents"]):
                assert sample["tokens.npy"][cu[k]:cu[k + 1]].tolist() == by_id[meta["id"]].tokens.tolist()
                compiled += 1
    assert compiled == manifest["counts"]["documents_written"] > 0


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = llama3_folder(tmp_path_factory.mktemp("llama3") / "tok")
    return folder, AutoTokenizer.from_pretrained(str(folder))


def padded(records: list[dict]) -> list[dict]:
    """Text-only copies of the records, every other one with whitespace around its turns (the templates trim)."""
    out = text_only(records)
    for i, rec in enumerate(out):
        if i % 2:
            rec["conversations"] = [{**t, "value": f"  {t['value']}\n"} for t in rec["conversations"]]
    return out


@pytest.mark.parametrize("template", ["llama3", "auto"])
def test_llama3_and_auto_equal_apply_chat_template(data, llama3, tmp_path, template):
    folder, tok = llama3
    _, _, _, records = data
    records = padded(records)
    src = tmp_path / "text.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    enc, docs = encode(folder, template, src, None)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    kwargs = {"chat_template": LLAMA3_TEMPLATE} if template == "llama3" else {}
    trimmed = 0
    for rec, doc in zip(records, docs, strict=True):
        messages = [{"role": {"human": "user", "gpt": "assistant"}[t["from"]], "content": t["value"]}
                    for t in rec["conversations"]]
        expected = tok.apply_chat_template(messages, tokenize=True, **kwargs)["input_ids"]
        assert doc.tokens.tolist() == list(expected), rec["id"]
        # Supervision: each assistant message (as the template wrote it, trimmed) and its <|eot_id|>, nothing else.
        sup = doc.weights > 0
        cuts = np.flatnonzero(np.diff(np.concatenate([[0], sup.astype(np.int8), [0]])))
        runs = [doc.tokens[a:b].tolist() for a, b in zip(cuts[::2], cuts[1::2])]
        answers = [tok(m["content"].strip(), add_special_tokens=False)["input_ids"] + [eot]
                   for m in messages if m["role"] == "assistant"]
        assert runs == answers, rec["id"]
        trimmed += bool(doc.meta.get("trimmed_turns"))
    assert trimmed == len(records) // 2


def test_auto_counts_end_of_turn_tokens_declared_only_in_added_tokens_decoder(llama3):
    from litdata.render.auto import special_tokens

    _, tok = llama3
    assert "<|eot_id|>" not in tok.all_special_tokens
    assert "<|eot_id|>" in special_tokens(tok)
