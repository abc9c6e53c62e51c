"""Rotary embeddings that restart at every packed document.

Megatron's `GPTModel` builds rotary frequencies for positions 0..S-1 of the whole packed row (its
`position_ids` only feed learned absolute embeddings). With packing, every document after the first would
then see shifted positions and the loss of a packed row would differ from its documents run one by one.
`DocumentRotaryEmbedding` wraps the model's own `RotaryEmbedding` (same `inv_freq`, interleaving and
interpolation) and, when `DocumentState.position_ids` is set, returns per-token frequencies shaped
[s, b, 1, d]; Megatron's `apply_rotary_pos_emb` (bshd path, rope fusion off) broadcasts those over heads.
Version tolerance: we only read `inv_freq`, `rotary_interleaved` and `seq_len_interpolation_factor`
(checked with getattr) and delegate every other method to the wrapped module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from adapters.megatron.attention import DocumentState


class DocumentRotaryEmbedding(nn.Module):
    def __init__(self, base: nn.Module, state: DocumentState) -> None:
        super().__init__()
        if not hasattr(base, "inv_freq"):
            raise TypeError(f"{type(base).__name__} has no inv_freq; only plain RotaryEmbedding is supported")
        self.base = base
        self.state = state
        # A plain attribute in Megatron (not a buffer); keep our own CPU copy and move it per call.
        self.inv_freq = base.inv_freq.detach().float().cpu()
        self.interleaved = bool(getattr(base, "rotary_interleaved", False))
        self.interpolation = getattr(base, "seq_len_interpolation_factor", None)

    def get_rotary_seq_len(self, *args: Any, **kwargs: Any) -> int:
        return self.base.get_rotary_seq_len(*args, **kwargs)

    def forward(self, max_seq_len: int, *args: Any, **kwargs: Any) -> Tensor:
        positions = self.state.position_ids
        if positions is None:
            positions = torch.arange(max_seq_len)[None]
        if positions.shape[1] != max_seq_len:
            raise ValueError(f"position_ids cover {positions.shape[1]} tokens but the model runs {max_seq_len}")
        return rotary_frequencies(positions, self.inv_freq, self.interleaved, self.interpolation)


def rotary_frequencies(positions: Tensor, inv_freq: Tensor, interleaved: bool, interpolation: float | None) -> Tensor:
    """[b, s] positions -> [s, b, 1, dim] angles, laid out exactly like Megatron's `RotaryEmbedding.get_emb`."""
    device = positions.device
    pos = positions.to(device=device, dtype=torch.float32)
    if interpolation is not None:
        pos = pos / interpolation
    freqs = pos[..., None] * inv_freq.to(device)  # [b, s, dim/2]
    if interleaved:
        emb = torch.stack((freqs, freqs), dim=-1).flatten(-2)
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
    return emb.transpose(0, 1)[:, :, None, :].contiguous()


def install_document_rope(model: nn.Module, state: DocumentState) -> None:
    """Replace `model.rotary_pos_emb` (GPTModel, or LLaVA's language model) with the per-document version."""
    target = getattr(model, "language_model", None) or model
    rope = getattr(target, "rotary_pos_emb", None)
    if rope is None:
        return  # learned absolute positions already use position_ids
    if not isinstance(rope, DocumentRotaryEmbedding):
        target.rotary_pos_emb = DocumentRotaryEmbedding(rope, state)
