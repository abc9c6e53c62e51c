"""Packed rows through Hugging Face models (tiny, built from configs, no download): documents stay apart under every
attention implementation we accept, VIT weights give instruction tokens no gradient, and the loss of an optimizer
step does not depend on how it is cut into micro-batches."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adapters.hf.attention import PackedAttentionError, check_batch, check_model
from adapters.hf.collator import PackedCollator
from adapters.hf.dataset import LitShardDataset
from adapters.hf.loss import weighted_ce_sum
from adapters.megatron.reweigh import Reweigh
from litdata.classes import TokenClass
from tests.helpers.compile import compile_cli
from tests.helpers.hf_models import (
    documents,
    tiny_llama,
    tiny_llava,
    token_losses,
    weighted_sum,
)


@pytest.fixture(scope="module")
def demo4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hfmodel") / "out"
    assert compile_cli("demo", "--out", out, "--seq-len", 512, "--image-tokens", 4, "--no-progress") == 0
    return out


def text_view(sample):
    """The sample with its placeholders left as plain tokens (a text-only model reads them as such)."""
    return replace(sample, placeholders=sample.placeholders[:0], image_tokens=sample.image_tokens[:0], images=())


@pytest.fixture(scope="module")
def samples(demo4):
    return list(LitShardDataset(demo4, epochs=1, shuffle=False))[:3]


@pytest.mark.parametrize("impl", ["sdpa", "eager", "flex_attention"])
def test_a_packed_text_row_equals_its_documents_run_one_by_one(samples, impl):
    model, collate = tiny_llama(impl), PackedCollator()
    rows = [text_view(s) for s in samples[:2]]
    assert sum(len(s.cu_seqlens) - 1 for s in rows) >= 4
    with torch.no_grad():
        packed = weighted_sum(model, collate(rows))
        alone = sum(weighted_sum(model, collate([d])) for s in rows for d in documents(s))
        each = torch.cat([token_losses(model, collate([d])) for s in rows for d in documents(s)])
        together = token_losses(model, collate(rows))
        # The control: with an attention mask transformers stops detecting documents, and they leak.
        leaked = token_losses(model, collate(rows), attention_mask=torch.ones_like(collate(rows)["input_ids"]))
    assert packed.item() == pytest.approx(alone.item(), rel=1e-5)
    torch.testing.assert_close(together, each, rtol=1e-5, atol=1e-5)
    assert (leaked - each).abs().max() > 1e-3


def test_a_packed_llava_row_with_images_equals_its_documents_run_one_by_one(samples):
    model, collate = tiny_llava()
    row = samples[0]
    assert len(row.cu_seqlens) - 1 >= 3 and len(row.images) >= 3
    with torch.no_grad():
        packed = weighted_sum(model, collate([row]))
        alone = sum(weighted_sum(model, collate([d])) for d in documents(row))
    assert packed.item() == pytest.approx(alone.item(), rel=1e-5)


def logit_grads(model, batch) -> torch.Tensor:
    """d loss / d logits at every position (the logits at i predict token i+1)."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "loss_weights")}
    logits = model(**inputs).logits.detach().requires_grad_(True)
    weighted_ce_sum(logits, batch["labels"], batch["loss_weights"]).backward()
    return logits.grad[0].abs().sum(-1)


def test_vit_gives_instruction_tokens_no_gradient(demo4):
    model, collate = tiny_llama(), PackedCollator()

    def predicting(reweigh, cls):
        sample = text_view(next(iter(LitShardDataset(demo4, shuffle=False, reweigh=reweigh))))
        grads = logit_grads(model, collate([sample]))
        targets = np.flatnonzero(sample.classes == cls)
        return grads[targets - 1]  # the positions whose logits predict those tokens

    assert (predicting(Reweigh(mode="vit"), TokenClass.INSTRUCTION) == 0).all()
    assert (predicting(Reweigh(mode="vit"), TokenClass.RESPONSE) > 0).all()
    assert (predicting(Reweigh(mode="lit"), TokenClass.INSTRUCTION) > 0).any()


def test_two_accumulated_micro_batches_equal_one_big_batch(samples, tmp_path):
    from transformers import TrainingArguments

    from adapters.hf.trainer import LitTrainer

    rows = [text_view(s) for s in samples[:2]]
    assert rows[0].weights.sum() != rows[1].weights.sum()  # else a plain mean of means would agree too
    collate = PackedCollator()

    def grads(micro_batches):
        model = tiny_llama().train()
        args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True,
                                 gradient_accumulation_steps=len(micro_batches))
        trainer = LitTrainer(model=model, args=args)
        num = trainer._get_num_items_in_batch(micro_batches, torch.device("cpu"))
        loss = sum(trainer.training_step(model, dict(b), num) for b in micro_batches)
        return loss, {n: p.grad.clone() for n, p in model.named_parameters()}

    loss_ga, g_ga = grads([collate([rows[0]]), collate([rows[1]])])
    loss_big, g_big = grads([collate(rows)])
    assert loss_ga.item() == pytest.approx(loss_big.item(), rel=1e-5)
    for name in g_big:
        torch.testing.assert_close(g_ga[name], g_big[name], rtol=1e-4, atol=1e-7, msg=name)
    # What a per-micro-batch mean would give instead: the two halves weighted equally.
    with torch.no_grad():
        model = tiny_llama()
        means = [weighted_sum(model, collate([r])) / float(r.weights[1:].sum()) for r in rows]
    assert abs(sum(means).item() / 2 - loss_big.item()) > 1e-4


def test_attention_that_cannot_isolate_documents_is_refused():
    for impl in ("sdpa", "eager", "flex_attention", "flash_attention_2"):
        check_model(SimpleNamespace(config=SimpleNamespace(_attn_implementation=impl)))
    llava_like = SimpleNamespace(config=SimpleNamespace(text_config=SimpleNamespace(_attn_implementation="my_kernel")))
    with pytest.raises(PackedAttentionError, match="'my_kernel' cannot keep packed documents apart"):
        check_model(llava_like)
    batch = PackedCollator()([SimpleNamespace(  # the smallest sample: one document of two tokens
        tokens=np.array([1, 2], np.int32), weights=np.array([0, 1], np.float32), cu_seqlens=np.array([0, 2], np.int32),
        placeholders=np.zeros(0, np.int64), image_tokens=np.zeros(0, np.int32), images=())])
    check_batch(batch)
    with pytest.raises(PackedAttentionError, match="attention_mask"):
        check_batch({**batch, "attention_mask": torch.ones(1, 2)})
    with pytest.raises(PackedAttentionError, match="use_cache"):
        check_batch({k: v for k, v in batch.items() if k != "use_cache"})
