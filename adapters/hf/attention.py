"""Document isolation for packed rows: which attention implementations keep documents apart, and refusing the rest.

What the installed transformers does with a packed row (read in transformers 5.x, checked by tests/adapters/hf/test_hf_model.py):
- `sdpa`, `eager`, `flex_attention`: `masking_utils` builds the causal mask; when `attention_mask` is None, there is
  no cache and `position_ids` are given, `find_packed_sequence_indices` starts a new document wherever the position
  does not grow by exactly 1, and the mask becomes block-diagonal causal. An `attention_mask` (even all ones) or a
  cache (`use_cache` defaults to True, also in training) turns that detection off and documents attend to each
  other: measured on a tiny Llama, logits then differ from the documents run alone by 0.2, against 1e-7.
- `flash_attention_2` / `flash_attention_3`: `cu_seq_lens_q/k` and `max_length_q/k` from the batch go to
  `flash_attn_varlen_func` (and, without them, `_is_packed_sequence` derives them from `position_ids`). Not
  installable on this CPU machine, so not run here.
- Anything else (hub kernels, paged attention, custom functions) is refused: we cannot tell what it does.
The collator therefore sends no `attention_mask` and `use_cache=False`, and `check_batch` refuses a batch that
would switch the detection off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ISOLATING = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")


class PackedAttentionError(ValueError):
    """The model or the batch would let packed documents attend to each other."""


def text_attention_implementation(model: Any) -> str | None:
    """The attention implementation of the language model (a multimodal config keeps it in `text_config`)."""
    config = getattr(model, "config", None)
    text = getattr(config, "text_config", None) or config
    return getattr(text, "_attn_implementation", None)


def check_model(model: Any) -> None:
    """Refuse a model whose attention cannot keep packed documents apart, naming what to load instead."""
    impl = text_attention_implementation(model)
    if impl not in ISOLATING:
        raise PackedAttentionError(
            f"attention implementation {impl!r} cannot keep packed documents apart; load the model with "
            f"attn_implementation= one of {', '.join(ISOLATING)} (flash_attention_* need flash-attn installed)")
    if not impl.startswith("flash_attention"):
        from transformers import masking_utils

        if not hasattr(masking_utils, "find_packed_sequence_indices"):
            import transformers

            raise PackedAttentionError(
                f"transformers {transformers.__version__} does not derive document masks from packed position_ids "
                f"for {impl!r}; upgrade transformers or use flash_attention_2")


def check_batch(batch: Mapping[str, Any]) -> None:
    """Refuse a packed batch whose extra inputs would switch document detection off."""
    if batch.get("attention_mask") is not None:
        raise PackedAttentionError("a packed batch must not carry attention_mask: with one, transformers attends "
                                   "across documents (use adapters.hf.collator.PackedCollator)")
    if batch.get("use_cache", True) is not False:
        raise PackedAttentionError("a packed batch needs use_cache=False: with a cache, transformers attends across "
                                   "documents (PackedCollator sets it)")
    if "position_ids" not in batch:
        raise PackedAttentionError("a packed batch needs position_ids that restart at every document")
