"""LLaVA on the compiled demo: Megatron's LLaVAModel (CLIP ViT + projector + our document-masked GPT) trains on
real packed rows with images, in image-expanded space."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("megatron.core")

from adapters.megatron.batch import SequenceArrays, collate
from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import ImageSpec
from adapters.megatron.models import build_llava, preset, vision_tokens
from adapters.megatron.reweigh import Reweigh
from adapters.megatron.step import StepModel, train_step
from litdata.classes import TokenClass
from tests.helpers.megatron import compile_demo, free_port, init_parallel, per_token_ce

ROOT = Path(__file__).resolve().parents[3]
SEQ = 512
ARGS = preset("llava-tiny", seq_length=SEQ)  # 56 px images, patch 14: 16 tokens per image
IMAGE_TOKENS = vision_tokens(ARGS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return compile_demo(tmp_path_factory, "llava", seq_len=SEQ, image_tokens=IMAGE_TOKENS)


@pytest.fixture(scope="module")
def manifest(demo) -> dict:
    return json.loads((demo / "manifest.json").read_text())["config"]


@pytest.fixture(scope="module")
def llava(manifest) -> StepModel:
    init_parallel()
    torch.manual_seed(0)
    model, state = build_llava(ARGS, vocab_size=manifest["tokenizer"]["vocab_size"], tp_size=1, on_gpu=False,
                               image_token_index=manifest["image_token_id"])
    assert model.img_seq_len == IMAGE_TOKENS
    return StepModel(model=model, state=state, image_token_index=manifest["image_token_id"],
                     image_tokens=model.img_seq_len)


def sequences(demo, **kwargs) -> list[SequenceArrays]:
    return list(PackedShardDataset(demo, shuffle=False, image_spec=ImageSpec(size=ARGS.img_size), **kwargs))


def batch_of(seqs: list[SequenceArrays]) -> dict:
    return collate(seqs, seq_len=SEQ, image_tokens=IMAGE_TOKENS, image_size=ARGS.img_size)


def split_documents(seq: SequenceArrays) -> list[SequenceArrays]:
    """Each document of a packed sequence as a sequence of its own (with its own images)."""
    out, first_image = [], 0
    for d in range(len(seq.images_per_doc)):
        a, b, k = int(seq.cu_seqlens[d]), int(seq.cu_seqlens[d + 1]), int(seq.images_per_doc[d])
        out.append(SequenceArrays(shard=seq.shard, key=f"{seq.key}/{d}", tokens=seq.tokens[a:b],
                                  weights=seq.weights[a:b], classes=seq.classes[a:b],
                                  cu_seqlens=np.array([0, b - a], np.int32), images_per_doc=seq.images_per_doc[d:d + 1],
                                  images=seq.images[first_image:first_image + k]))
        first_image += k
    return out


def test_forward_backward_on_a_demo_batch_trains_vit_and_projector(demo, llava):
    seqs = sequences(demo)[:2]
    batch = batch_of(seqs)
    assert batch["images"].shape[0] >= 2 and batch["images"].shape[1:] == (3, ARGS.img_size, ARGS.img_size)
    llava.model.train()
    llava.model.zero_grad(set_to_none=True)
    report = train_step(llava, None, [batch])

    assert math.isfinite(report["loss"]) and report["loss"] > 0
    # Image placeholders carry weight 0 in the stored data, so expansion keeps every unit of weight.
    assert report["weight_sum"] == pytest.approx(float(batch["loss_mask"].sum()))
    vit, proj = llava.model.vision_model, llava.model.vision_projection
    for name, p in [("conv1", vit.conv1.weight), ("class_token", vit.class_token),
                    ("vit attention", vit.decoder.layers[0].self_attention.linear_qkv.weight),
                    ("projector fc1", proj.encoder.linear_fc1.weight), ("projector fc2", proj.encoder.linear_fc2.weight)]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name


def test_packed_row_with_images_equals_its_documents_alone(demo, llava):
    seq = next(s for s in sequences(demo) if len(s.images_per_doc) >= 2 and (s.images_per_doc >= 1).all())
    packed_ce, packed = per_token_ce(llava, batch_of([seq]))
    packed_ce = packed_ce[0]

    offset, weighted_alone = 0, 0.0
    for doc in split_documents(seq):
        ce, alone = per_token_ce(llava, batch_of([doc]))
        n = doc.n_tokens + int(doc.images_per_doc.sum()) * (IMAGE_TOKENS - 1)  # expanded length
        # The document's last position predicts the next document's first token (weight 0): not compared.
        torch.testing.assert_close(packed_ce[offset:offset + n - 1], ce[0, :n - 1], rtol=1e-4, atol=1e-4)
        weighted_alone += float((ce[0] * alone["loss_mask"][0]).sum())
        offset += n
    assert float((packed_ce * packed["loss_mask"][0]).sum()) == pytest.approx(weighted_alone, rel=1e-4)

    # The check can fail: one document id for the whole row lets the second document see the first.
    leaky = batch_of([seq])
    leaky["document_ids"] = torch.where(leaky["document_ids"] >= 0, 0, -1)
    leaky_ce, _ = per_token_ce(llava, leaky)
    start = int(seq.cu_seqlens[1]) + int(seq.images_per_doc[0]) * (IMAGE_TOKENS - 1)
    assert not torch.allclose(leaky_ce[0, start:offset - 1], packed_ce[start:offset - 1], atol=1e-4)


def test_expanded_weights_and_labels_sit_on_the_right_text_tokens(demo, llava):
    """By hand: expand every row (an image placeholder becomes IMAGE_TOKENS image slots), then position q must
    predict expanded token q+1 with that token's weight (instruction 0.3 here, response 1, image slots 0)."""
    seqs = [s for s in sequences(demo, reweigh=Reweigh(mode="lit", overrides={"instruction": 0.3}))
            if s.images_per_doc.sum() > 0][:2]
    batch = batch_of(seqs)
    seen: dict = {}
    hook = llava.model.language_model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.update(labels=kwargs["labels"].clone()), with_kwargs=True)
    try:
        _, x = per_token_ce(llava, batch)
    finally:
        hook.remove()
    image_id = llava.image_token_index
    for row, seq in enumerate(seqs):
        tok, w, cls = [], [], []
        for t, weight, c in zip(seq.tokens.tolist(), seq.weights.tolist(), seq.classes.tolist()):
            copies = IMAGE_TOKENS if t == image_id else 1
            tok += [-1 if t == image_id else t] * copies
            w += [0.0 if t == image_id else weight] * copies
            cls += [c] * copies
        n = len(tok)
        expected = torch.zeros(x["loss_mask"].shape[1])
        expected[: n - 1] = torch.tensor(w[1:])
        torch.testing.assert_close(x["loss_mask"][row], expected)
        supervised = torch.nonzero(expected > 0).flatten().tolist()
        assert supervised, "the demo rows have supervised text"
        assert [int(seen["labels"][row, q]) for q in supervised] == [tok[q + 1] for q in supervised]
        assert [int(x["label_classes"][row, q]) for q in supervised] == [cls[q + 1] for q in supervised]
        instruction = [q for q in supervised if cls[q + 1] == TokenClass.INSTRUCTION]
        response = [q for q in supervised if cls[q + 1] == TokenClass.RESPONSE]
        assert instruction and response
        assert torch.allclose(x["loss_mask"][row, instruction], torch.tensor(0.3))
        assert torch.all(x["loss_mask"][row, response] == 1.0)
        slots_before_image = [q for q in range(n - 1) if tok[q + 1] == -1]
        assert x["loss_mask"][row, slots_before_image].abs().sum() == 0
    # In total no weight is lost or invented by the expansion.
    assert float(x["loss_mask"].sum()) == pytest.approx(float(batch["loss_mask"].sum()), rel=1e-6)


def test_trainer_refuses_shards_compiled_for_another_image_token_count(demo):
    from adapters.megatron.train import main

    # 42 px images in 14 px patches give 9 tokens per image; the shards reserve 16.
    with pytest.raises(ValueError, match=r"image_tokens=16 .* emits 9 tokens per image.*--image-tokens 9"):
        main(["--data", str(demo), "--model", "llava-tiny", "--img-size", "42", "--steps", "1"])


@pytest.mark.distributed
def test_torchrun_tp2_trains_llava_on_the_demo(demo, tmp_path):
    log = tmp_path / "run.jsonl"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", f"--master-port={free_port()}",
           "-m", "adapters.megatron.train", "--data", str(demo), "--tensor-model-parallel-size", "2",
           "--model", "llava-tiny", "--steps", "5", "--log-json", str(log)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    for r in rows:
        assert {"loss", "response_loss", "instruction_loss", "supervised_tokens", "weight_sum",
                "tokens_per_s"} <= set(r)
        assert all(math.isfinite(r[k]) for k in ("loss", "response_loss", "instruction_loss", "tokens_per_s"))
        assert r["supervised_tokens"] > 0 and r["weight_sum"] > 0


def test_llava_resumes_from_a_checkpoint_with_the_same_losses(demo, tmp_path):
    def run(log: str, *extra: str) -> list[dict]:
        env = dict(os.environ, MASTER_PORT=str(free_port()), PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "adapters.megatron.train", "--data", str(demo), "--model", "llava-tiny",
               "--steps", "4", "--log-json", str(tmp_path / log), *extra]
        done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in (tmp_path / log).read_text().splitlines()]

    full = run("full.jsonl", "--save", str(tmp_path / "ckpt"), "--save-interval", "2")
    resumed = run("resumed.jsonl", "--load", str(tmp_path / "ckpt" / "iter_0000002"))
    assert [r["step"] for r in resumed] == [3, 4]
    for a, b in zip(full[2:], resumed):
        assert b["weight_sum"] == a["weight_sum"]  # the same batches
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
