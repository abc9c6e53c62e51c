"""Loading a tokenizer (with what the manifest records of it), and batch encoding with offsets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from litdata.records.conversation import IMAGE_PLACEHOLDER


class TokenizerError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class TokenizerInfo:
    """What the manifest and the training side need to know about the tokenizer, including every flag that
    changes its ids and the library versions that produced them."""

    name: str
    vocab_hash: str
    vocab_size: int  # len(tokenizer): includes added tokens such as <image>
    image_token_id: int
    pad_id: int
    bos_token: str | None
    eos_token: str | None
    added_image_token: bool  # True when <image> was not in the tokenizer and the compiler added it
    tokenizer_class: str
    legacy: bool | None  # LLaMA tokenizers: word-start marker after special tokens (True) or not
    add_bos_token: bool  # measured: does encoding with special tokens start with BOS
    add_prefix_space: bool | None
    backend: str  # "tokenizers" (tokenizer.json) or "sentencepiece" (a tokenizer.model-only folder)
    versions: dict  # transformers, tokenizers (and sentencepiece for that backend)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _check_folder(p: Path, path: str | Path) -> bool:
    """Say what is missing from a folder that cannot load; True when only SentencePiece's model is there."""
    if not p.exists():
        raise TokenizerError(f"--tokenizer {path}: no such file or directory (a local Hugging Face tokenizer folder)")
    if not p.is_dir() or (p / "tokenizer.json").is_file():
        return False
    if not (p / "tokenizer.model").is_file():
        if any((p / f).is_file() for f in ("vocab.json", "vocab.txt", "merges.txt")):
            return False  # other slow-tokenizer files: transformers says itself what it lacks
        raise TokenizerError(f"--tokenizer {path}: no tokenizer.json (a fast tokenizer) and no tokenizer.model "
                             "(SentencePiece) in the folder")
    missing = [m for m in ("sentencepiece", "google.protobuf") if not _importable(m)]
    if missing:
        names = " and ".join("protobuf" if m == "google.protobuf" else m for m in missing)
        raise TokenizerError(f"--tokenizer {path}: the folder has tokenizer.model but no tokenizer.json; reading it "
                             f"needs the {names} package(s): pip install sentencepiece protobuf")
    if not (p / "tokenizer_config.json").is_file():
        raise TokenizerError(f"--tokenizer {path}: tokenizer.model needs a tokenizer_config.json beside it naming "
                             'the tokenizer class and its flags, e.g. {"tokenizer_class": "LlamaTokenizer", '
                             '"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "legacy": true}')
    return True


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _versions(backend: str) -> dict:
    import tokenizers
    import transformers

    out = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
    if backend == "sentencepiece":
        import sentencepiece

        out["sentencepiece"] = sentencepiece.__version__
    return out


def _flag(tok: Any, name: str) -> bool | None:
    value = getattr(tok, name, None)
    return value if isinstance(value, bool) else None


def load_tokenizer(path: str | Path) -> tuple[Any, TokenizerInfo]:
    """Load a local Hugging Face tokenizer folder and make sure `<image>` is a single special token.

    A folder with `tokenizer.json` uses it (fast, with offsets). A folder with only `tokenizer.model` (and its
    `tokenizer_config.json`) is encoded by SentencePiece itself (litdata/tokenize/sentencepiece.py).
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    p = Path(path)
    sentencepiece_only = _check_folder(p, path)
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
    # What the tokenizer adds around a text, measured: transformers 5 reports `add_bos_token=False` for LLaMA
    # tokenizer.json folders whose post-processor adds BOS all the same.
    probe = tok.backend_tokenizer.encode("a", add_special_tokens=True).ids
    adds_bos = bool(probe) and tok.bos_token_id is not None and probe[0] == tok.bos_token_id
    adds_eos = bool(probe) and tok.eos_token_id is not None and probe[-1] == tok.eos_token_id
    if sentencepiece_only:
        from litdata.tokenize.sentencepiece import SentencePieceEncoder

        tok.litdata_sentencepiece = SentencePieceEncoder(
            p / "tokenizer.model", {str(t.content): int(i) for i, t in tok.added_tokens_decoder.items()},
            bos_id=tok.bos_token_id, add_bos=adds_bos, eos_id=tok.eos_token_id, add_eos=adds_eos,
            legacy=_flag(tok, "legacy") is not False)
    if len(encode_texts(tok, [IMAGE_PLACEHOLDER])[0][0]) != 1:
        raise TokenizerError(f"--tokenizer {path}: {IMAGE_PLACEHOLDER} does not encode to a single token")
    vocab = json.dumps(sorted(tok.get_vocab().items()), separators=(",", ":")).encode()
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    backend = "sentencepiece" if sentencepiece_only else "tokenizers"
    info = TokenizerInfo(
        name=p.name,
        vocab_hash=hashlib.sha256(vocab).hexdigest(),
        vocab_size=len(tok),
        image_token_id=int(image_id),
        pad_id=int(pad),
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        added_image_token=added,
        tokenizer_class=type(tok).__name__,
        legacy=_flag(tok, "legacy"),
        add_bos_token=adds_bos,
        add_prefix_space=_flag(tok, "add_prefix_space"),
        backend=backend,
        versions=_versions(backend),
    )
    return tok, info


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batch-encode rendered texts (special tokens in the text are recognised; nothing is added around them).

    Calls the Rust tokenizer directly: the transformers wrapper converts every encoding to Python lists and
    back, which cost more than the tokenization itself in the compile profile.
    """
    return encode_with_offsets(tokenizer, texts, add_special_tokens=False)


def encode_with_offsets(tokenizer: Any, texts: Sequence[str], *,
                        add_special_tokens: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    if not texts:
        return []
    ids, offsets, counts = flat_encodings(native_encode(tokenizer, texts, add_special_tokens=add_special_tokens))
    return list(zip(cut_rows(ids, counts), cut_rows(offsets, counts)))


def cut_rows(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """Views of `flat` cut into consecutive pieces of `counts` rows (np.split costs several times more)."""
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def native_encode(tokenizer: Any, texts: Sequence[str], *, add_special_tokens: bool) -> list:
    """The tokenizer's own batch encode: the Rust tokenizer's releases the GIL, so another thread's Python runs
    meanwhile (TokenizeJob). A tokenizer.model-only folder gives SentencePiece's (ids, offsets) pairs."""
    sp = getattr(tokenizer, "litdata_sentencepiece", None)
    if sp is not None:  # litdata/tokenize/sentencepiece.py
        return sp.encode_batch(texts, add_special_tokens=add_special_tokens)
    return tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)


_IDS, _OFFSETS = attrgetter("ids"), attrgetter("offsets")


def flat_encodings(encodings: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids (int32) and offsets (int64 [n, 2]) of all the encodings end to end, and each one's token count."""
    if encodings and isinstance(encodings[0], tuple):  # SentencePiece's arrays
        counts = np.fromiter((ids.shape[0] for ids, _ in encodings), dtype=np.int64, count=len(encodings))
        return np.concatenate([i for i, _ in encodings]), np.concatenate([o for _, o in encodings]), counts
    # Read the whole batch into two flat arrays: one np.array call per encoding over its list of offset tuples
    # cost more than the Rust getters themselves (a tenth of a CPU second per 3,000 records).
    counts = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    total = int(counts.sum())
    # map(attrgetter), not a generator expression: no Python frame resumed per encoding
    ids = np.fromiter(chain.from_iterable(map(_IDS, encodings)), dtype=np.int32, count=total)
    offsets = np.fromiter(chain.from_iterable(chain.from_iterable(map(_OFFSETS, encodings))), dtype=np.int64,
                          count=2 * total).reshape(-1, 2)
    return ids, offsets, counts
