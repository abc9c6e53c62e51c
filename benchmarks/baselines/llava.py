"""LLaVA-1.5's per-sample preprocessing (haotian-liu/LLaVA, llava/train/train.py and llava/mm_utils.py), ported.

`preprocess_multimodal`, `tokenizer_image_token` and `preprocess_v1` follow the original line by line, with the
`conv_vicuna_v1` template (SeparatorStyle.TWO, sep " ", sep2 "</s>"), including its correction for non-legacy
LLaMA tokenizers (`if i != 0 and not tokenizer.legacy and IS_TOKENIZER_GREATER_THAN_0_14`). Every tokenization
is the tokenizer's own `__call__` (`tokenizer(text).input_ids`, BOS included), as in LLaVA. This port is the
reference litdata's `vicuna_v1` is tested against (tests/tokenize/test_real_tokenizers.py), and the benchmark's baseline.

LLaVA loads LLaMA tokenizers, which add BOS. The bundled demo tokenizer does not, so the benchmark wraps it in
`WithBos`, which makes its `__call__` add BOS the way LLaMA's does; real LLaMA tokenizers are used unwrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

IGNORE_INDEX = -100
IMAGE_TOKEN_INDEX = -200
DEFAULT_IMAGE_TOKEN = "<image>"
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
ROLES = {"human": "USER", "gpt": "ASSISTANT"}
SEP, SEP2 = " ", "</s>"


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    input_ids: np.ndarray  # int64 [n]; IMAGE_TOKEN_INDEX where an image goes
    labels: np.ndarray  # int64 [n]; IGNORE_INDEX where no loss
    mismatch: bool  # LLaVA's "tokenization mismatch" warning fired and the whole example was masked


class WithBos:
    """A tokenizer whose `__call__` adds no BOS, made to add it as LLaMA's does (the demo tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_token_id = tokenizer.bos_token_id
        self.legacy = True
        self.model_max_length = tokenizer.model_max_length

    def __call__(self, text: str) -> dict:
        return {"input_ids": [self.bos_token_id, *self.tokenizer(text, add_special_tokens=False)["input_ids"]]}


def llama_like(tokenizer: Any) -> Any:
    """The tokenizer itself if its `__call__` adds BOS (LLaMA's do), else `WithBos(tokenizer)`."""
    ids = tokenizer("a")["input_ids"]
    return tokenizer if ids and ids[0] == tokenizer.bos_token_id else WithBos(tokenizer)


def _call(tokenizer: Any) -> Callable[[str], list[int]]:
    """`tokenizer(text).input_ids`, as LLaVA writes it."""
    return lambda text: list(tokenizer(text)["input_ids"])


def _tokenizers_at_least_0_14() -> bool:
    import tokenizers

    major, minor = (int(x) for x in tokenizers.__version__.split(".")[:2])
    return (major, minor) >= (0, 14)


def preprocess_multimodal(conversations: list[dict]) -> list[dict]:
    """LLaVA moves `<image>` to the front of its turn (mm_use_im_start_end=False)."""
    out = []
    for sentence in conversations:
        value = sentence["value"]
        if DEFAULT_IMAGE_TOKEN in value:
            value = value.replace(DEFAULT_IMAGE_TOKEN, "").strip()
            value = DEFAULT_IMAGE_TOKEN + "\n" + value
            value = value.strip()
        out.append({"from": sentence["from"], "value": value})
    return out


def vicuna_prompt(conversations: Sequence[dict]) -> str:
    """`conv_vicuna_v1.get_prompt()` after appending every message (SeparatorStyle.TWO)."""
    source = list(conversations)
    if ROLES[source[0]["from"]] != "USER":
        source = source[1:]  # "Skip the first one if it is not from human"
    ret = VICUNA_SYSTEM + SEP
    for j, sentence in enumerate(source):
        role = ROLES[sentence["from"]]
        assert role == ("USER", "ASSISTANT")[j % 2], "roles out of order"
        ret += role + ": " + sentence["value"] + (SEP, SEP2)[j % 2]
    return ret


def tokenizer_image_token(prompt: str, call: Callable[[str], list[int]], bos_id: int) -> list[int]:
    prompt_chunks = [call(chunk) for chunk in prompt.split(DEFAULT_IMAGE_TOKEN)]

    def insert_separator(x, sep):
        return [ele for sublist in zip(x, [sep] * len(x)) for ele in sublist][:-1]

    input_ids: list[int] = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == bos_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [IMAGE_TOKEN_INDEX] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


def mask_targets(
    conversation: str, input_ids: np.ndarray, tokenize_len: Callable[[str], int], model_max_length: int,
    non_legacy_correction: bool = False,
) -> Example:
    """The masking loop of `preprocess_v1`; `tokenize_len(text)` is LLaVA's `len(tokenizer...(text))`;
    `non_legacy_correction` is LLaVA's `not tokenizer.legacy and IS_TOKENIZER_GREATER_THAN_0_14`."""
    target = input_ids.copy()
    total_len = int(target.shape[0])  # no padding: one example at a time
    sep = SEP + "ASSISTANT" + ": "
    rounds = conversation.split(SEP2)
    cur_len = 1
    target[:cur_len] = IGNORE_INDEX
    for i, rou in enumerate(rounds):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        round_len = tokenize_len(rou)
        instruction_len = tokenize_len(parts[0]) - 2
        if i != 0 and non_legacy_correction:
            round_len -= 1
            instruction_len -= 1
        target[cur_len : cur_len + instruction_len] = IGNORE_INDEX
        cur_len += round_len
    target[cur_len:] = IGNORE_INDEX
    mismatch = False
    if cur_len < model_max_length and cur_len != total_len:
        target[:] = IGNORE_INDEX  # LLaVA prints "WARNING: tokenization mismatch" and ignores the sample
        mismatch = True
    return Example(input_ids=input_ids, labels=target, mismatch=mismatch)


class LlavaPreprocessor:
    """One record at a time, as LLaVA's `LazySupervisedDataset.__getitem__` calls `preprocess`."""

    def __init__(self, tokenizer: Any, model_max_length: int = 2048) -> None:
        self.tokenizer = tokenizer
        self.call = _call(tokenizer)
        self.bos_id = tokenizer.bos_token_id
        self.model_max_length = model_max_length
        # LLaVA reads `tokenizer.legacy` (a LLaMA tokenizer attribute); others count as legacy here.
        self.non_legacy = getattr(tokenizer, "legacy", True) is False and _tokenizers_at_least_0_14()

    def __call__(self, record: dict) -> Example:
        has_image = "image" in record
        convs = preprocess_multimodal(record["conversations"]) if has_image else record["conversations"]
        conversation = vicuna_prompt(convs)
        if has_image:
            ids = tokenizer_image_token(conversation, self.call, self.bos_id)
            tokenize_len = lambda text: len(tokenizer_image_token(text, self.call, self.bos_id))
        else:
            # LLaVA pads and truncates to model_max_length here; one record at a time there is nothing to pad.
            ids = self.call(conversation)[: self.model_max_length]
            tokenize_len = lambda text: len(self.call(text))
        return mask_targets(conversation, np.asarray(ids, dtype=np.int64), tokenize_len, self.model_max_length,
                            self.non_legacy)
