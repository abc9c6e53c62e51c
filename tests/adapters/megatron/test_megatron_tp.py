"""Tensor parallelism changes nothing: TP=2 (two gloo processes) gives TP=1's loss and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

pytest.importorskip("megatron.core")

from adapters.megatron.models import build_gpt, preset
from adapters.megatron.step import StepModel, train_step
from tests.helpers.megatron import conversation, free_port, gathered_grads, init_parallel, make_batch

VOCAB = 256  # already a multiple of 128 * TP for TP 1 and 2, so both draw the same embedding


def batches() -> list[dict]:
    rng = np.random.default_rng(3)
    rows = [[conversation(rng, VOCAB, 5, 6, 0.5), conversation(rng, VOCAB, 3, 9, 0.5)],
            [conversation(rng, VOCAB, 8, 8, 0.5)]]
    return [make_batch(rows, seq_len=32)]


def loss_and_grads(tp: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """Full (gathered) gradients by parameter name, same seed; SwiGLU off because Megatron's CPU init splits
    the fused [gate; up] master weight by contiguous rows, which is a different function at TP=2."""
    torch.manual_seed(0)
    model, state = build_gpt(preset("tiny", swiglu=False, seq_length=32), vocab_size=VOCAB, tp_size=tp, on_gpu=False)
    report = train_step(StepModel(model=model, state=state), None, batches())
    return report, gathered_grads(model, tp)


def _tp2_worker(rank: int, port: int, out: str) -> None:
    init_parallel(rank=rank, world_size=2, tp=2, port=port)
    report, grads = loss_and_grads(tp=2)
    if rank == 0:
        torch.save({"report": report, "grads": grads}, out)
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


@pytest.mark.distributed
def test_tp2_matches_tp1(tmp_path):
    out = str(tmp_path / "tp2.pt")
    mp.spawn(_tp2_worker, args=(free_port(), out), nprocs=2, join=True)
    tp2 = torch.load(out)

    init_parallel()
    report, grads = loss_and_grads(tp=1)

    assert tp2["report"]["loss"] == pytest.approx(report["loss"], rel=1e-5)
    assert tp2["report"]["response_loss"] == pytest.approx(report["response_loss"], rel=1e-5)
    assert tp2["report"]["weight_sum"] == report["weight_sum"]
    assert set(tp2["grads"]) == set(grads)
    for name, g in grads.items():
        torch.testing.assert_close(tp2["grads"][name], g, rtol=1e-4, atol=1e-6, msg=name)
