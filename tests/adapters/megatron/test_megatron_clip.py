"""Gradient clipping by the global norm matches torch's own clip_grad_norm_ (TP=1)."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("megatron.core")

from adapters.megatron.step import clip_gradients, gradients
from tests.helpers.megatron import init_parallel


def model_with_grads(seed):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))
    m(torch.randn(5, 8)).square().sum().backward()
    return m


@pytest.mark.parametrize("max_norm", [0.01, 1e6])
def test_clip_matches_torch(max_norm):
    init_parallel()
    ours, ref = model_with_grads(0), model_with_grads(0)
    total = clip_gradients(gradients(ours), max_norm)
    expected = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm)
    assert total == pytest.approx(float(expected), rel=1e-5)
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
