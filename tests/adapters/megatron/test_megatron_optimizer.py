"""MixedPrecisionAdamW: bf16 models keep float32 main weights and gradients; float32 models get plain AdamW."""

from __future__ import annotations

import copy

import pytest
import torch

from adapters.megatron.optimizer import MixedPrecisionAdamW


def linear(dtype: torch.dtype, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3).to(dtype)


def backward(model: torch.nn.Module, seed: int) -> None:
    torch.manual_seed(100 + seed)
    x = torch.randn(5, 4, dtype=next(model.parameters()).dtype)
    model(x).float().square().sum().backward()


def test_float32_model_steps_exactly_like_torch_adamw():
    ours, ref = linear(torch.float32), linear(torch.float32)
    opt = MixedPrecisionAdamW(ours, lr=1e-2, weight_decay=0.1)
    # torch's AdamW with the same groups: decay on the weight matrix, none on the bias
    ref_opt = torch.optim.AdamW([{"params": [ref.weight], "weight_decay": 0.1}, {"params": [ref.bias], "weight_decay": 0.0}],
                                lr=1e-2, betas=(0.9, 0.95))
    for step in range(3):
        for model, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            backward(model, step)
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_updates_below_bf16_resolution_accumulate_in_the_main_weights():
    """At 1.0 a bf16 weight moves in steps of 2**-7; an Adam update of 1e-3 rounds away every time in bf16 but
    adds up in the float32 main copy until the bf16 weight moves."""
    def run(make_optimizer) -> torch.Tensor:
        p = torch.nn.Parameter(torch.ones(4, 4, dtype=torch.bfloat16))
        model = torch.nn.Module()
        model.p = p
        opt = make_optimizer(model)
        for _ in range(10):
            opt.zero_grad()
            (p.float().sum()).backward()
            opt.step()
        return p.detach().float()

    pure = run(lambda m: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0))
    mixed = run(lambda m: MixedPrecisionAdamW(m, lr=1e-3))
    assert torch.all(pure == 1.0)  # the failure the main weights exist for
    # Adam's update under a constant gradient is lr: the main weight is 0.990, and its bf16 rounding 0.98828
    assert torch.equal(mixed, torch.full((4, 4), 1 - 10 * 1e-3).bfloat16().float())
    assert float(mixed[0, 0]) == pytest.approx(0.98828, abs=1e-5)


def test_gradients_accumulate_over_micro_batches_in_float32():
    p = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.bfloat16))
    model = torch.nn.Module()
    model.p = p
    opt = MixedPrecisionAdamW(model, lr=1e-3)
    opt.zero_grad()
    (p.float() * 1.0).sum().backward()
    (p.float() * 0.001).sum().backward()  # in bf16, 1.0 + 0.001 rounds back to 1.0
    [(param, grad)] = opt.gradients()
    assert param is p and p.grad is None and grad.dtype == torch.float32
    torch.testing.assert_close(grad, torch.full((2, 2), 1.001))
    opt.zero_grad()
    assert float(opt.gradients()[0][1].abs().sum()) == 0


def test_state_dict_restores_main_weights_not_their_bf16_rounding():
    a = linear(torch.bfloat16)
    opt = MixedPrecisionAdamW(a, lr=1e-3)
    for step in range(3):
        opt.zero_grad()
        backward(a, step)
        opt.step()
    state = copy.deepcopy(opt.state_dict())  # as torch.save would: no tensor shared with the live state

    b = linear(torch.bfloat16, seed=1)  # other weights: everything must come from the state
    restored = MixedPrecisionAdamW(b, lr=1e-3)
    restored.load_state_dict(state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
        assert torch.equal(opt.main_of[pa], restored.main_of[pb])
        assert not torch.equal(restored.main_of[pb], pb.float())  # the main copy is finer than the bf16 weight
    for model, o in ((a, opt), (b, restored)):
        o.zero_grad()
        backward(model, 7)
        o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)

    with pytest.raises(ValueError, match="2 float32 main parameters, the model has 1"):
        one = torch.nn.Module()
        one.p = torch.nn.Parameter(torch.zeros(2, dtype=torch.bfloat16))
        MixedPrecisionAdamW(one, lr=1e-3).load_state_dict(state)


def test_removed_hooks_leave_the_gradients_on_the_model():
    model = linear(torch.bfloat16)
    opt = MixedPrecisionAdamW(model, lr=1e-3)
    backward(model, 0)
    assert model.weight.grad is None  # taken into the float32 buffer
    opt.remove_hooks()
    backward(model, 1)
    assert model.weight.grad is not None and model.weight.grad.dtype == torch.bfloat16
