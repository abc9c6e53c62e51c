"""Tokenization with offsets, and one class per token from the rendered text's character classes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from litdata.records.conversation import IMAGE_PLACEHOLDER

_SPACE_CODEPOINTS = np.array([9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x3000], dtype=np.uint32)


class TokenizerError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class TokenizerInfo:
    """What the manifest and the training side need to know about the tokenizer."""

    name: str
    vocab_hash: str
    vocab_size: int  # len(tokenizer): includes added tokens such as <image>
    image_token_id: int
    pad_id: int
    bos_token: str | None
    eos_token: str | None
    added_image_token: bool  # True when <image> was not in the tokenizer and the compiler added it

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def load_tokenizer(path: str | Path) -> tuple[Any, TokenizerInfo]:
    """Load a local Hugging Face *fast* tokenizer and make sure `<image>` is a single special token."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    p = Path(path)
    if not p.exists():
        raise TokenizerError(f"--tokenizer {path}: no such file or directory (a local Hugging Face tokenizer folder)")
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True, use_fast=True)
    except Exception as e:
        raise TokenizerError(f"--tokenizer {path}: cannot load a Hugging Face tokenizer: {e}") from None
    if not getattr(tok, "is_fast", False):
        raise TokenizerError(f"--tokenizer {path}: a fast tokenizer (tokenizer.json) is needed for character offsets")
    added = False
    if tok.convert_tokens_to_ids(IMAGE_PLACEHOLDER) in (None, tok.unk_token_id):
        tok.add_special_tokens({"additional_special_tokens": [IMAGE_PLACEHOLDER]})
        added = True
    image_id = tok.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
    if len(tok(IMAGE_PLACEHOLDER, add_special_tokens=False)["input_ids"]) != 1:
        raise TokenizerError(f"--tokenizer {path}: {IMAGE_PLACEHOLDER} does not encode to a single token")
    vocab = json.dumps(sorted(tok.get_vocab().items()), separators=(",", ":")).encode()
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    info = TokenizerInfo(
        name=p.name,
        vocab_hash=hashlib.sha256(vocab).hexdigest(),
        vocab_size=len(tok),
        image_token_id=int(image_id),
        pad_id=int(pad),
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        added_image_token=added,
    )
    return tok, info


def _first_nonspace(text: str) -> np.ndarray:
    """next_nonspace[i] = the smallest j >= i whose character is not whitespace (len(text) if none)."""
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    n = cps.shape[0]
    idx = np.where(np.isin(cps, _SPACE_CODEPOINTS), n, np.arange(n, dtype=np.int64))
    nxt = np.minimum.accumulate(idx[::-1])[::-1] if n else idx
    return np.append(nxt, n)


def token_classes(text: str, char_classes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The class of each token: that of the character holding its first non-space character (DESIGN.md).

    A whitespace-only token takes the class of its first character. Tokens with empty offsets (added by the
    tokenizer itself) are markup.
    """
    if offsets.shape[0] == 0:
        return np.zeros(0, dtype=np.uint8)
    starts, ends = offsets[:, 0], offsets[:, 1]
    nxt = _first_nonspace(text)
    pos = nxt[starts]
    pos = np.where(pos < ends, pos, starts)
    classes = np.zeros(starts.shape[0], dtype=np.uint8)
    has_chars = ends > starts
    classes[has_chars] = char_classes[pos[has_chars]]
    return classes


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batch-encode rendered texts (special tokens in the text are recognised; nothing is added around them).

    Calls the Rust tokenizer directly: the transformers wrapper converts every encoding to Python lists and
    back, which cost more than the tokenization itself in the compile profile.
    """
    encodings = tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return [
        (np.array(e.ids, dtype=np.int32), np.array(e.offsets, dtype=np.int64).reshape(-1, 2)) for e in encodings
    ]
