"""Tiny Hugging Face models and per-document views of a packed sample, shared by the HF adapter tests."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from adapters.hf.collator import PackedCollator
from adapters.hf.loss import weighted_ce_sum

VOCAB = 2609  # the bundled demo tokenizer
IMAGE_ID = 4  # its <image> token


def llama_config(**overrides):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, **overrides)


def documents(sample):
    """Each document of a packed sample as a sample of its own."""
    out = []
    cu = sample.cu_seqlens
    for lo, hi in zip(cu[:-1].tolist(), cu[1:].tolist()):
        mine = (sample.placeholders >= lo) & (sample.placeholders < hi)
        first = int(np.count_nonzero(sample.placeholders < lo))
        out.append(replace(
            sample, tokens=sample.tokens[lo:hi], weights=sample.weights[lo:hi], classes=sample.classes[lo:hi],
            cu_seqlens=np.array([0, hi - lo], np.int32), placeholders=sample.placeholders[mine] - lo,
            image_tokens=sample.image_tokens[mine], images=sample.images[first:first + int(mine.sum())],
            image_members=sample.image_members[first:first + int(mine.sum())]))
    return out


def token_losses(model, batch, **extra) -> torch.Tensor:
    """The cross-entropy of every supervised prediction, in order."""
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "loss_weights")}
    logits = model(**inputs, **extra).logits[0, :-1]
    labels = batch["labels"][0, 1:]
    return torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100], reduction="none")


def weighted_sum(model, batch, **extra) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "loss_weights")}
    logits = model(**inputs, **extra).logits
    return weighted_ce_sum(logits, batch["labels"], batch["loss_weights"])


def tiny_llama(impl: str = "sdpa"):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config())
    model.set_attn_implementation(impl)
    return model.eval()


def tiny_llava():
    """CLIP ViT on 28 px images with 14 px patches: 4 tokens per image with the class token dropped."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(image_size=28, patch_size=14, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2)
    config = LlavaConfig(vision_config=vision, text_config=llama_config(), image_token_id=IMAGE_ID,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    return model, PackedCollator(image_processor=processor, image_token_id=model.config.image_token_id)
