"""A packed LLaVA-NeXT row through the Hugging Face adapter (issue 13): images of different sizes compiled with
`--image-tokens processor:DIR` for a tiny local LlavaNextProcessor (built from config objects, no download) carry
the counts the model itself produces (anyres grid, unpadding, newline tokens, base image), and the packed row's
weighted loss equals the sum of its documents run one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from adapters.hf.collator import PackedCollator
from adapters.hf.dataset import LitShardDataset
from tests.helpers.compile import compile_cli
from tests.helpers.hf_models import IMAGE_ID, VOCAB, documents, llama_config, token_losses, weighted_sum

# 28 px crops of 14 px patches: 2x2 features per crop (CLS dropped); grids of up to 2x2 crops.
CROP, PATCH = 28, 14
PINPOINTS = [[28, 56], [56, 28], [56, 56], [28, 84], [84, 28]]
# (width, height): square, wide, tall, very wide, odd ones: the counts differ
SIZES = [(40, 40), (90, 30), (30, 90), (200, 20), (57, 31), (31, 57)]


@pytest.fixture(scope="module")
def processor_dir(tmp_path_factory) -> Path:
    from transformers import LlavaNextImageProcessor, LlavaNextProcessor, PreTrainedTokenizerFast

    from litdata.demo import DEMO_TOKENIZER_DIR

    tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(DEMO_TOKENIZER_DIR) / "tokenizer.json"))
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tok.image_token = "<image>"
    assert tok.convert_tokens_to_ids("<image>") == IMAGE_ID and len(tok) == VOCAB
    ip = LlavaNextImageProcessor(size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP},
                                 image_grid_pinpoints=PINPOINTS)
    proc = LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)
    folder = tmp_path_factory.mktemp("llava_next_processor")
    proc.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def compiled(processor_dir, tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("llava_next_src")
    (root / "img").mkdir()
    for i, (w, h) in enumerate(SIZES):
        Image.new("RGB", (w, h), (i * 40 % 255, 90, 170)).save(root / "img" / f"{i}.png")
    words = ["red", "blue", "circle", "square", "left", "right", "small", "large"]
    records = []
    for r in range(8):
        imgs = [f"{r % len(SIZES)}.png"] if r % 3 else [f"{r % len(SIZES)}.png", f"{(r + 1) % len(SIZES)}.png"]
        tags = " ".join("<image>" for _ in imgs)
        text = " ".join(words[(r * 3 + k) % len(words)] for k in range(4 + r))
        records.append({"id": f"r{r}", "image": imgs if len(imgs) > 1 else imgs[0],
                        "conversations": [{"from": "human", "value": f"{tags}\nDescribe {text}"},
                                          {"from": "gpt", "value": f"It is {text}."}]})
    (root / "data.json").write_text(json.dumps(records))
    out = tmp_path_factory.mktemp("llava_next_out") / "out"
    assert compile_cli("compile", root / "data.json", "--image-root", root / "img", "--out", out, "--no-progress",
                       "--seq-len", 512, "--no-mine-templates", "--image-tokens", f"processor:{processor_dir}") == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["image_token_rule"] == "processor:llava_next"
    return out


def tiny_llava_next(processor_dir: Path):
    """A LlavaNextForConditionalGeneration whose CLIP tower sees 28 px crops in 14 px patches."""
    from transformers import AutoImageProcessor, CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(image_size=CROP, patch_size=PATCH, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2)
    config = LlavaNextConfig(vision_config=vision, text_config=llama_config(), image_token_index=IMAGE_ID,
                             image_grid_pinpoints=PINPOINTS, vision_feature_select_strategy="default",
                             vision_feature_layer=-2)
    model = LlavaNextForConditionalGeneration(config).eval()
    model.set_attn_implementation("sdpa")
    processor = AutoImageProcessor.from_pretrained(processor_dir)
    return model, PackedCollator(image_processor=processor, image_token_id=model.config.image_token_id)


def model_counts(model, batch) -> list[int]:
    """The number of features the model itself puts in place of each image's tokens."""
    with torch.no_grad():
        out = model.model.get_image_features(pixel_values=batch["pixel_values"], image_sizes=batch["image_sizes"],
                                             vision_feature_layer=-2, vision_feature_select_strategy="default")
    feats = out if isinstance(out, (list, tuple)) else getattr(out, "pooler_output", out)
    return [int(f.shape[0]) for f in feats]


@pytest.fixture(scope="module")
def rows(compiled):
    return list(LitShardDataset(compiled, epochs=1, shuffle=False))


def test_packed_counts_equal_the_models_own_features(processor_dir, rows):
    model, collate = tiny_llava_next(processor_dir)
    counts = [c for r in rows for c in r.image_tokens.tolist()]
    assert len(set(counts)) >= 5  # different grids and unpadding
    assert (CROP // PATCH) ** 2 in counts  # (200, 20) unpads to no grid rows at all: the base image's features only
    for row in rows:
        assert len(row.cu_seqlens) - 1 >= 3
        batch = collate([row])
        # the collator expands each placeholder into exactly its stored count, in order ...
        ids = batch["input_ids"][0].numpy()
        assert int((ids == IMAGE_ID).sum()) == int(row.image_tokens.sum())
        starts = row.placeholders + np.concatenate([[0], np.cumsum(row.image_tokens - 1)[:-1]])
        for start, n in zip(starts.tolist(), row.image_tokens.tolist()):
            assert (ids[start:start + n] == IMAGE_ID).all() and ids[start + n] != IMAGE_ID
        # ... and the model puts exactly that many features in place of each image
        assert model_counts(model, batch) == row.image_tokens.tolist()


def test_a_packed_llava_next_row_equals_its_documents_run_one_by_one(processor_dir, rows):
    model, collate = tiny_llava_next(processor_dir)
    for row in rows:
        docs = documents(row)
        assert len(docs) >= 3 and sum(len(d.images) > 0 for d in docs) >= 3
        with torch.no_grad():
            packed = weighted_sum(model, collate([row]))
            alone = sum(weighted_sum(model, collate([d])) for d in docs)
            together = token_losses(model, collate([row]))
            each = torch.cat([token_losses(model, collate([d])) for d in docs])
            # The control: with an attention mask transformers stops detecting documents, and they leak.
            leaked = token_losses(model, collate([row]), attention_mask=torch.ones_like(collate([row])["input_ids"]))
        assert packed.item() == pytest.approx(alone.item(), rel=1e-4)
        torch.testing.assert_close(together, each, rtol=1e-4, atol=1e-4)
        assert (leaked - each).abs().max() > 1e-3
