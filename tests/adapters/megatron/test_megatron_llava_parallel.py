"""LLaVA under model and data parallelism changes nothing: on real demo rows with images, TP=2 gives TP=1's
loss and (gathered) gradients, and DP=2 (one row per rank, one of them without any image) gives the loss and
gradients of one process taking both rows, in one micro-batch or as two accumulated ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

pytest.importorskip("megatron.core")

from adapters.megatron.batch import SequenceArrays, collate
from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import ImageSpec
from adapters.megatron.models import build_llava, padded_vocab_size, preset, vision_tokens
from adapters.megatron.step import StepModel, train_step
from tests.helpers.megatron import compile_demo, free_port, gathered_grads, init_parallel

SEQ = 512
# SwiGLU off: Megatron's CPU init splits the fused [gate; up] master weight by contiguous rows, which is a
# different function at TP=2 (see test_megatron_tp.py). The ViT and projector use GELU anyway.
ARGS = preset("llava-tiny", seq_length=SEQ, swiglu=False)
IMAGE_TOKENS = vision_tokens(ARGS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return compile_demo(tmp_path_factory, "llava-parallel", seq_len=SEQ, image_tokens=IMAGE_TOKENS)


def rows(demo: Path) -> tuple[dict, list[SequenceArrays]]:
    """The manifest config and two rows: a packed row with several images, and one image-free document."""
    import json

    cfg = json.loads((demo / "manifest.json").read_text())["config"]
    seqs = list(PackedShardDataset(demo, shuffle=False, image_spec=ImageSpec(size=ARGS.img_size)))
    with_images = next(s for s in seqs if s.images_per_doc.sum() >= 2 and len(s.images_per_doc) >= 2)
    text_only = next(_text_only_document(s) for s in seqs if (s.images_per_doc == 0).any())
    return cfg, [with_images, text_only]


def _text_only_document(seq: SequenceArrays) -> SequenceArrays:
    d = int(np.flatnonzero(seq.images_per_doc == 0)[0])
    a, b = int(seq.cu_seqlens[d]), int(seq.cu_seqlens[d + 1])
    return SequenceArrays(shard=seq.shard, key=f"{seq.key}/{d}", tokens=seq.tokens[a:b], weights=seq.weights[a:b],
                          classes=seq.classes[a:b], cu_seqlens=np.array([0, b - a], np.int32),
                          images_per_doc=seq.images_per_doc[d:d + 1], images=seq.images[:0])


def batch_of(seqs: list[SequenceArrays]) -> dict:
    return collate(seqs, seq_len=SEQ, image_tokens=IMAGE_TOKENS, image_size=ARGS.img_size)


def loss_and_grads(cfg: dict, micro_batches: list[dict], *, tp: int, dp_group=None) -> tuple[dict, dict]:
    """One step's report and full gradients by parameter name (TP shards gathered), from seed 0."""
    torch.manual_seed(0)
    # The vocab is padded to a multiple of 128 * TP; pad it for TP=2 in both runs so both draw one embedding.
    vocab = padded_vocab_size(cfg["tokenizer"]["vocab_size"], 2)
    model, state = build_llava(ARGS, vocab_size=vocab, tp_size=tp, on_gpu=False,
                               image_token_index=cfg["image_token_id"])
    sm = StepModel(model=model, state=state, image_token_index=cfg["image_token_id"], image_tokens=model.img_seq_len)
    report = train_step(sm, None, micro_batches, dp_group=dp_group)
    return report, gathered_grads(model, tp)


def _worker(rank: int, port: int, demo: str, tp: int, out: str) -> None:
    """Two processes: TP=2 on both rows, or (tp=1) DP=2 with row `rank` on each rank."""
    from megatron.core import parallel_state

    init_parallel(rank=rank, world_size=2, tp=tp, port=port)
    cfg, seqs = rows(Path(demo))
    if tp == 2:
        report, grads = loss_and_grads(cfg, [batch_of(seqs)], tp=2)
    else:
        report, grads = loss_and_grads(cfg, [batch_of([seqs[rank]])], tp=1,
                                       dp_group=parallel_state.get_data_parallel_group())
    if rank == 0:
        torch.save({"report": report, "grads": grads}, out)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def two_processes(demo: Path, tp: int, tmp_path: Path) -> dict:
    out = str(tmp_path / f"tp{tp}.pt")
    mp.spawn(_worker, args=(free_port(), str(demo), tp, out), nprocs=2, join=True)
    return torch.load(out)


def assert_same(got: dict, report: dict, grads: dict) -> None:
    for key in ("loss", "response_loss", "instruction_loss"):
        assert got["report"][key] == pytest.approx(report[key], rel=1e-5), key
    assert got["report"]["weight_sum"] == pytest.approx(report["weight_sum"], rel=1e-6)
    assert got["report"]["supervised_tokens"] == report["supervised_tokens"]
    assert set(got["grads"]) == set(grads)
    for name, g in grads.items():
        torch.testing.assert_close(got["grads"][name], g, rtol=1e-4, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def reference(demo) -> tuple[dict, list[SequenceArrays], dict, dict]:
    """TP=1, DP=1: both rows in one micro-batch."""
    init_parallel()
    cfg, seqs = rows(demo)
    assert len(seqs[0].images) >= 2 and len(seqs[1].images) == 0
    report, grads = loss_and_grads(cfg, [batch_of(seqs)], tp=1)
    # The ViT and projector really receive gradient here, so comparing them below means something.
    assert float(grads["vision_model.conv1.weight"].abs().sum()) > 0
    return cfg, seqs, report, grads


@pytest.mark.distributed
def test_llava_tp2_matches_tp1(demo, reference, tmp_path):
    _, _, report, grads = reference
    assert_same(two_processes(demo, 2, tmp_path), report, grads)


@pytest.mark.distributed
def test_llava_dp2_matches_one_process_with_both_rows(demo, reference, tmp_path):
    """Rank 1's row has no image: its ViT gets no gradient locally and must still join the DP sum as zeros."""
    _, _, report, grads = reference
    assert_same(two_processes(demo, 1, tmp_path), report, grads)


def test_llava_gradient_accumulation_matches_one_micro_batch(reference):
    cfg, seqs, report, grads = reference
    init_parallel()
    accumulated = loss_and_grads(cfg, [batch_of([seqs[0]]), batch_of([seqs[1]])], tp=1)
    assert_same({"report": accumulated[0], "grads": accumulated[1]}, report, grads)
