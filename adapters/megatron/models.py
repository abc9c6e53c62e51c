"""Model presets (tiny .. 1b, llava-tiny) and builders for Megatron-Core GPTModel / LLaVAModel.

Every model uses the local spec with `DocumentAttention` as core attention and `DocumentRotaryEmbedding`,
both fed by one `DocumentState` (see attention.py). Preset values can be overridden with Megatron's own flag
names (`--num-layers`, `--hidden-size`, ...): `ModelArgs` below is the flat set of those options.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from adapters.megatron.attention import DocumentAttention, DocumentState, VisionAttention
from adapters.megatron.rope import install_document_rope


@dataclass(frozen=True, kw_only=True)
class ModelArgs:
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    ffn_hidden_size: int
    seq_length: int
    num_query_groups: int | None = None
    swiglu: bool = True
    bf16: bool = False
    rotary_base: int = 10000
    init_method_std: float = 0.02
    # Megatron's rule: the vocabulary is padded to a multiple of this x TP. The padded rows take part in the
    # softmax, so a checkpoint resumes at another TP size only with the same padded size (checkpoint.py checks).
    make_vocab_size_divisible_by: int = 128
    # llava only: a Megatron CLIP ViT in front of the language model
    vision: bool = False
    vit_num_layers: int = 2
    vit_hidden_size: int = 64
    vit_num_attention_heads: int = 4
    img_size: int = 56
    patch_dim: int = 14


PRESETS: dict[str, ModelArgs] = {
    "tiny": ModelArgs(num_layers=2, hidden_size=64, num_attention_heads=4, ffn_hidden_size=128, seq_length=256),
    "small": ModelArgs(num_layers=12, hidden_size=768, num_attention_heads=12, ffn_hidden_size=2048, seq_length=2048),
    # The lead's measured 1.34B config: 24 layers, hidden 2048, 16 heads, SwiGLU ffn 5504.
    "1b": ModelArgs(
        num_layers=24, hidden_size=2048, num_attention_heads=16, ffn_hidden_size=5504, seq_length=4096, bf16=True
    ),
    "llava-tiny": ModelArgs(
        num_layers=2, hidden_size=64, num_attention_heads=4, ffn_hidden_size=128, seq_length=256, vision=True
    ),
}


def preset(name: str, **overrides: Any) -> ModelArgs:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r} (valid: {', '.join(PRESETS)})")
    return dataclasses.replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def padded_vocab_size(vocab_size: int, tp_size: int, divisible_by: int = 128) -> int:
    """Megatron's rule: pad to a multiple of `divisible_by` x TP so that every rank holds an equal, aligned slice."""
    multiple = divisible_by * tp_size
    return -(-vocab_size // multiple) * multiple


def vision_tokens(args: ModelArgs) -> int:
    """Tokens the CLIP ViT emits per image once LLaVA drops the class token."""
    return (args.img_size // args.patch_dim) ** 2


def transformer_config(args: ModelArgs, *, tp_size: int, on_gpu: bool) -> Any:
    from megatron.core.transformer import TransformerConfig

    dtype = torch.bfloat16 if args.bf16 else torch.float32
    return TransformerConfig(
        num_layers=args.num_layers,
        hidden_size=args.hidden_size,
        num_attention_heads=args.num_attention_heads,
        num_query_groups=args.num_query_groups,
        ffn_hidden_size=args.ffn_hidden_size,
        tensor_model_parallel_size=tp_size,
        gated_linear_unit=args.swiglu,
        activation_func=F.silu if args.swiglu else F.gelu,
        normalization="RMSNorm",
        add_bias_linear=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=args.init_method_std,
        bf16=args.bf16,
        params_dtype=dtype,
        pipeline_dtype=dtype,
        # CPU initialisation draws the full master weight then splits it, so TP=1 and TP=2 start identical.
        use_cpu_initialization=not on_gpu,
        apply_rope_fusion=False,  # fused rope expects [s, 1, 1, d]; ours is per token [s, b, 1, d]
        bias_activation_fusion=False,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        gradient_accumulation_fusion=False,
    )


def layer_spec(state: DocumentState) -> Any:
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
    from megatron.core.transformer.spec_utils import ModuleSpec

    spec = copy.deepcopy(get_gpt_layer_local_spec(normalization="RMSNorm"))
    spec.submodules.self_attention.submodules.core_attention = ModuleSpec(
        module=DocumentAttention, params={"state": state}
    )
    return spec


def build_gpt(args: ModelArgs, *, vocab_size: int, tp_size: int, on_gpu: bool) -> tuple[Any, DocumentState]:
    from megatron.core.models.gpt import GPTModel

    state = DocumentState()
    config = transformer_config(args, tp_size=tp_size, on_gpu=on_gpu)
    model = GPTModel(
        config=config,
        transformer_layer_spec=layer_spec(state),
        vocab_size=padded_vocab_size(vocab_size, tp_size, args.make_vocab_size_divisible_by),
        max_sequence_length=args.seq_length,
        position_embedding_type="rope",
        rotary_base=args.rotary_base,
        share_embeddings_and_output_weights=False,
    )
    install_document_rope(model, state)
    return model, state


def vit_layer_spec() -> Any:
    """Megatron's local ViT layer spec with `VisionAttention` (bidirectional SDPA) as core attention.

    The stock local spec asks its `DotProductAttention` for a causal mask (its Transformer Engine twin uses
    `no_mask`; a CLIP ViT attends over all patches) and takes the score buffer from CUDA memory."""
    from megatron.core.models.vision.vit_layer_specs import get_vit_layer_with_local_spec
    from megatron.core.transformer.enums import AttnMaskType

    spec = copy.deepcopy(get_vit_layer_with_local_spec())
    attention = spec.submodules.self_attention
    attention.params = {**attention.params, "attn_mask_type": AttnMaskType.no_mask}
    attention.submodules.core_attention = VisionAttention
    return spec


@contextlib.contextmanager
def _cpu_tensor_cuda() -> Iterator[None]:
    """CPU-only shim, used while building a LLaVAModel without a GPU: `CLIPViTModel.__init__` creates its
    `position_ids` with `torch.arange(...).cuda()`; here `Tensor.cuda` returns the tensor unchanged."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


@contextlib.contextmanager
def _vit_with_local_norms() -> Iterator[None]:
    """Without Transformer Engine, `CLIPViTModel` defaults `ln_pre_impl` to `torch.nn.LayerNorm`, which
    `build_module` cannot construct (it passes `config=`). While LLaVAModel is built we hand it a
    CLIPViTModel whose norms default to Megatron's `WrappedTorchNorm` (same LayerNorm, config-aware).
    Parameter names and checkpoints are unchanged; with Transformer Engine this does nothing."""
    import inspect

    from megatron.core.models.multimodal import llava_model
    from megatron.core.models.vision import clip_vit_model

    base = clip_vit_model.CLIPViTModel
    default = inspect.signature(base.__init__).parameters.get("ln_pre_impl")
    if default is None or default.default is not torch.nn.LayerNorm:
        yield
        return
    from megatron.core.transformer.torch_norm import WrappedTorchNorm

    class CLIPViTModel(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("ln_pre_impl", WrappedTorchNorm)
            kwargs.setdefault("ln_post_impl", WrappedTorchNorm)
            super().__init__(*args, **kwargs)

    llava_model.CLIPViTModel = CLIPViTModel
    try:
        yield
    finally:
        llava_model.CLIPViTModel = base


def build_llava(
    args: ModelArgs, *, vocab_size: int, tp_size: int, on_gpu: bool, image_token_index: int
) -> tuple[Any, DocumentState]:
    """LLaVAModel = Megatron's CLIP ViT (local spec, class token dropped) + 2-layer MLP projection + our
    document-masked language model. Every image becomes `vision_tokens(args)` embeddings in the language
    model's sequence (checked against the model's own `img_seq_len`)."""
    from megatron.core.models.multimodal.llava_model import LLaVAModel
    from megatron.core.tensor_parallel.layers import ColumnParallelLinear, RowParallelLinear
    from megatron.core.transformer.mlp import MLPSubmodules

    state = DocumentState()
    lang = transformer_config(args, tp_size=tp_size, on_gpu=on_gpu)
    vit_args = dataclasses.replace(
        args,
        num_layers=args.vit_num_layers,
        hidden_size=args.vit_hidden_size,
        num_attention_heads=args.vit_num_attention_heads,
        ffn_hidden_size=4 * args.vit_hidden_size,
        num_query_groups=None,
        swiglu=False,
    )
    vit = dataclasses.replace(transformer_config(vit_args, tp_size=tp_size, on_gpu=on_gpu),
                              normalization="LayerNorm", add_bias_linear=True)
    # Not a TransformerConfig field in 0.16 (Megatron's own scripts set it as an attribute); LLaVAModel reads it.
    vit.vision_model_type = "clip"
    proj = dataclasses.replace(lang, ffn_hidden_size=args.hidden_size, gated_linear_unit=False,
                               activation_func=F.gelu, add_bias_linear=True)
    with _vit_with_local_norms(), contextlib.nullcontext() if on_gpu else _cpu_tensor_cuda():
        model = LLaVAModel(
            language_transformer_config=lang,
            language_transformer_layer_spec=layer_spec(state),
            language_vocab_size=padded_vocab_size(vocab_size, tp_size, args.make_vocab_size_divisible_by),
            language_max_sequence_length=args.seq_length,
            vision_transformer_config=vit,
            vision_transformer_layer_spec=vit_layer_spec(),
            drop_vision_class_token=True,
            vision_projection_config=proj,
            # Built directly: `get_mlp_module_spec` returns a ModuleSpec in 0.16 but a partial in 0.19.
            vision_projection_layer_spec=MLPSubmodules(linear_fc1=ColumnParallelLinear, linear_fc2=RowParallelLinear),
            language_position_embedding_type="rope",
            language_rotary_base=args.rotary_base,
            img_h=args.img_size,
            img_w=args.img_size,
            patch_dim=args.patch_dim,
            image_token_index=image_token_index,
        )
    if model.img_seq_len != vision_tokens(args):
        raise ValueError(f"LLaVAModel emits {model.img_seq_len} tokens per image, expected {vision_tokens(args)}")
    if not hasattr(model, "model_type"):
        # Megatron's schedules read it; its training scripts set it from outside (the ViT and the language
        # model run in one stage here, so this is a plain encoder-or-decoder model).
        from megatron.core.transformer.enums import ModelType

        model.model_type = ModelType.encoder_or_decoder
    if args.bf16:
        # The ViT's patch convolution is a plain torch Conv2d created in float32; the rest follows params_dtype.
        model.to(torch.bfloat16)
    install_document_rope(model, state)
    return model, state


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
