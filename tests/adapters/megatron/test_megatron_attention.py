"""Packed documents never see each other: a packed row's per-token loss equals its documents run alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("megatron.core")

from adapters.megatron.attention import DocumentState
from adapters.megatron.models import build_gpt, preset
from adapters.megatron.rope import rotary_frequencies
from tests.helpers.megatron import init_parallel, make_batch, random_document

VOCAB = 100


@pytest.fixture(scope="module")
def gpt():
    init_parallel()
    torch.manual_seed(0)
    model, state = build_gpt(preset("tiny", seq_length=32), vocab_size=VOCAB, tp_size=1, on_gpu=False)
    return model.eval(), state


def per_token_ce(gpt, batch):
    model, state = gpt
    state.set(batch["document_ids"], batch["position_ids"])
    with torch.no_grad():
        return model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])


def test_packed_row_equals_documents_one_by_one(gpt):
    rng = np.random.default_rng(0)
    docs = [random_document(rng, n, VOCAB) for n in (7, 11, 5)]
    packed = make_batch([docs], seq_len=28)  # 23 real tokens + 5 padding
    ce_packed = per_token_ce(gpt, packed)[0]

    start = 0
    total_alone = 0.0
    for doc in docs:
        alone = make_batch([[doc]], seq_len=len(doc))
        ce_alone = per_token_ce(gpt, alone)[0]
        n = len(doc)
        # The last position of a document predicts the next document's first token: weight 0, not compared.
        torch.testing.assert_close(ce_packed[start : start + n - 1], ce_alone[: n - 1], rtol=1e-5, atol=1e-5)
        total_alone += float((ce_alone * alone["loss_mask"][0]).sum())
        start += n

    packed_sum = float((ce_packed * packed["loss_mask"][0]).sum())
    assert packed_sum == pytest.approx(total_alone, rel=1e-5)


def test_without_document_ids_documents_leak(gpt):
    """The check above can fail: plain causal attention over the packed row changes later documents."""
    rng = np.random.default_rng(1)
    docs = [random_document(rng, n, VOCAB) for n in (6, 6)]
    packed = make_batch([docs], seq_len=12)
    masked = per_token_ce(gpt, packed)[0]
    leaky = dict(packed, document_ids=torch.zeros_like(packed["document_ids"]),
                 position_ids=torch.arange(12)[None])
    unmasked = per_token_ce(gpt, leaky)[0]
    torch.testing.assert_close(masked[:5], unmasked[:5])
    assert not torch.allclose(masked[6:11], unmasked[6:11], atol=1e-4)


def test_rope_frequencies_match_megatron_layout():
    from megatron.core.models.common.embeddings.rotary_pos_embedding import RotaryEmbedding

    rope = RotaryEmbedding(kv_channels=16, rotary_percent=1.0, use_cpu_initialization=True)
    ours = rotary_frequencies(torch.arange(10)[None], rope.inv_freq, False, None)
    freqs = rope.get_freqs_non_repeated(10)
    theirs = torch.cat((freqs, freqs), dim=-1)[:, None, None, :]
    torch.testing.assert_close(ours, theirs)


def test_dense_mask_is_causal_and_per_document():
    state = DocumentState(backend="sdpa")
    state.set(torch.tensor([[0, 0, 1, 1, -1]]), torch.tensor([[0, 1, 0, 1, 0]]))
    mask = state.dense_mask(5, 5, torch.device("cpu"))[0, 0].int()
    expected = torch.tensor(
        [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]
    )
    assert torch.equal(mask, expected)


def test_flex_block_mask_matches_dense_mask():
    """The GPU path's mask_mod, evaluated by flex_attention's reference (uncompiled) CPU implementation."""
    flex = pytest.importorskip("torch.nn.attention.flex_attention")
    docs = torch.tensor([[0] * 40 + [1] * 60 + [-1] * 28])
    state = DocumentState(backend="flex")
    state.set(docs, None)
    block = state.block_mask(128, 128, torch.device("cpu"))
    q, k, v = (torch.randn(1, 2, 128, 8) for _ in range(3))
    out = flex.flex_attention(q, k, v, block_mask=block)
    dense = DocumentState(backend="sdpa")
    dense.set(docs, None)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense.dense_mask(128, 128, q.device))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
