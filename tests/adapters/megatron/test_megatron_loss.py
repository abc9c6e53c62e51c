"""The weighted LIT loss: global weighted mean, per-class reports, gradient accumulation, vit vs lit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("megatron.core")

from adapters.megatron.loss import WeightedLoss, global_weight_sum
from adapters.megatron.models import build_gpt, preset
from adapters.megatron.step import StepModel, train_step
from litdata.classes import TokenClass
from tests.helpers.megatron import conversation, init_parallel, make_batch

VOCAB = 128


@pytest.fixture()
def model():
    init_parallel()
    torch.manual_seed(0)
    m, state = build_gpt(preset("tiny", seq_length=32), vocab_size=VOCAB, tp_size=1, on_gpu=False)
    return StepModel(model=m, state=state)


def grads(sm: StepModel, micro_batches: list[dict]) -> tuple[dict, torch.Tensor]:
    report = train_step(sm, None, micro_batches)
    flat = torch.cat([p.grad.flatten() for p in sm.model.parameters()])
    for p in sm.model.parameters():
        p.grad = None
    return report, flat


def test_loss_is_weighted_mean_with_class_means():
    ce = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    w = torch.tensor([[0.0, 0.5, 1.0, 1.0]])
    classes = torch.tensor([[0, 4, 5, 5]], dtype=torch.uint8)
    loss, report = WeightedLoss(weight_total=global_weight_sum([w]))(w, classes, ce)
    assert float(loss) == pytest.approx((0.5 * 2 + 3 + 4) / 2.5)
    assert float(report["response_ce"] / report["response_tokens"]) == pytest.approx(3.5)
    assert float(report["instruction_ce"] / report["instruction_tokens"]) == pytest.approx(2.0)
    assert float(report["supervised_tokens"]) == 3


def test_two_microbatches_equal_one_big_batch(model):
    rng = np.random.default_rng(0)
    # Different weight sums per row, so averaging per micro-batch would NOT give the global mean.
    rows = [[conversation(rng, VOCAB, 4, 12, 0.3)], [conversation(rng, VOCAB, 9, 2, 0.3)]]
    big = make_batch(rows, seq_len=20)
    halves = [make_batch(rows[:1], seq_len=20), make_batch(rows[1:], seq_len=20)]
    report_big, g_big = grads(model, [big])
    report_acc, g_acc = grads(model, halves)
    assert report_acc["loss"] == pytest.approx(report_big["loss"], rel=1e-6)
    assert report_acc["weight_sum"] == pytest.approx(report_big["weight_sum"])
    torch.testing.assert_close(g_acc, g_big, rtol=1e-5, atol=1e-7)


def test_vit_instruction_tokens_give_no_gradient_lit_scales_them(model):
    rng = np.random.default_rng(1)
    instr = [(1, int(TokenClass.MARKUP), 0.0)] + [
        (int(t), int(TokenClass.INSTRUCTION), 1.0) for t in rng.integers(1, VOCAB, 10)
    ]

    def batch(weight: float) -> dict:
        b = make_batch([[[(t, c, weight if c == TokenClass.INSTRUCTION else w) for t, c, w in instr]]], seq_len=12)
        return b

    vit = batch(0.0)  # what Reweigh("vit") gives an instruction-only document
    assert float(vit["loss_mask"].sum()) == 0
    report, g_vit = grads(model, [vit])
    assert torch.count_nonzero(g_vit) == 0
    assert report["supervised_tokens"] == 0 and report["instruction_loss"] is not None

    # Unnormalised gradient sum(w * dce): the weight-0.5 run is exactly half of the weight-1.0 run.
    _, g_half = grads(model, [batch(0.5)])
    _, g_full = grads(model, [batch(1.0)])
    assert torch.count_nonzero(g_full) > 0
    w_half, w_full = 0.5 * 10, 1.0 * 10
    torch.testing.assert_close(g_half * w_half, 0.5 * g_full * w_full, rtol=1e-5, atol=1e-8)
