"""Tokenization with offsets, and one class per token from the rendered text's character classes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from litdata.classes import TokenClass
from litdata.records.conversation import IMAGE_PLACEHOLDER
from litdata.render.base import Rendered

_SPACE_CODEPOINTS = np.array([9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x3000], dtype=np.uint32)


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


# _IS_SPACE[min(cp, len - 1)]: whether code point cp is one of _SPACE_CODEPOINTS (the last entry stands for all
# code points above the largest one, none of which is a space). A lookup, not np.isin, which sorts every time.
_IS_SPACE = np.zeros(int(_SPACE_CODEPOINTS.max()) + 2, dtype=bool)
_IS_SPACE[_SPACE_CODEPOINTS] = True
# The same for one byte: an ASCII text is looked up byte by byte, with no clipping (4x less to read than UTF-32).
_IS_SPACE_BYTE = _IS_SPACE[:256].copy()
# How many characters a token starting on whitespace is followed over one at a time before the search over all
# non-space positions is built: runs are mostly one or two characters long, indentation may be hundreds.
_SHORT_RUN = 4


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts end to end as code points, and whether each is whitespace, both with one more entry at the end
    that is not whitespace (a sentinel: a search for the next non-space character stops there)."""
    text = "".join(texts) + "."
    if text.isascii():  # O(1) in CPython; most workloads
        cps = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        return cps, _IS_SPACE_BYTE[cps]
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return cps, _IS_SPACE[np.minimum(cps, _IS_SPACE.shape[0] - 1)]


def _next_solid(is_space: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first position at or after each start that is not whitespace (`is_space` ends with a non-space
    sentinel). Most tokens start on a non-space character; those that do not are moved forward a few characters
    at a time, and what is left after that is found among the sorted non-space positions (building those reads
    every character, so only long runs pay for it)."""
    pos = starts.copy()
    at = np.flatnonzero(is_space[starts])
    for _ in range(_SHORT_RUN):
        if not at.shape[0]:
            return pos
        pos[at] += 1
        at = at[is_space[pos[at]]]
    if at.shape[0]:
        solid = np.flatnonzero(~is_space)
        pos[at] = solid[np.searchsorted(solid, pos[at])]
    return pos


def token_classes(text: str, char_classes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The class of each token: that of the character holding its first non-space character (DESIGN.md).

    A token made only of spaces takes the class of the text that follows it: it is the word-start marker of
    the next word (SentencePiece's lone `▁` before a digit, CJK or emoji; a byte-level BPE's lone ` `), and
    LLaVA supervises it as the answer's first token (unless an image placeholder follows: the image class is
    only ever the placeholder token's own). A token holding a line break or a tab keeps the class of its own
    characters: templates use those as separators (ChatML's `\n`, Llama 3's `\n\n` after a header).
    Tokens with empty offsets (added by the tokenizer itself, such as BOS) are markup.
    """
    return token_classes_many([text], [char_classes], [offsets])[0]


def token_classes_many(
    texts: Sequence[str], char_classes: Sequence[np.ndarray], offsets: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """`token_classes` of many texts in a handful of numpy calls over all of them: one text at a time, the
    per-call overhead was most of the cost. The texts are laid end to end; every look-ahead is clipped at the
    end of its own text, so each result is the one its text gives alone."""
    counts = np.fromiter((o.shape[0] for o in offsets), dtype=np.int64, count=len(offsets))
    if not counts.sum():
        return [np.zeros(int(n), dtype=np.uint8) for n in counts]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    base = np.cumsum(lengths) - lengths
    offs = np.concatenate(offsets) + np.repeat(base, counts)[:, None]
    starts, ends = offs[:, 0], offs[:, 1]
    classes_of = np.concatenate(char_classes)
    cps, is_space = _code_points(texts)
    # pos: the first non-whitespace character at or after each token's start (the sentinel if none). It may lie in
    # a later text: a token's look-ahead counts only below its own text's end.
    pos = _next_solid(is_space, starts)
    spaces_only = pos >= ends
    if spaces_only.any():
        s_start, s_end, s_pos = starts[spaces_only], ends[spaces_only], pos[spaces_only]
        stop = np.repeat(base + lengths, counts)[spaces_only]  # where each one's text ends
        # Only ' ' in [start, end): none of the (rare) other whitespace characters, line breaks and tabs, in it.
        # These tokens are few and short: their own characters are read, not every character of the batch.
        width = np.maximum(s_end - s_start, 0)  # an empty token is markup whatever this says
        inside = np.repeat(s_start - (np.cumsum(width) - width), width) + np.arange(int(width.sum()))
        other = np.concatenate(([0], np.cumsum(cps[inside] != 32)))
        edges = np.cumsum(width)
        blank = other[edges] == other[edges - width]
        follows = blank & (s_pos < stop)
        # An image placeholder is a token of its own, not a word: a space before it keeps its own class, and the
        # image class stays exclusive to placeholder tokens.
        follows[follows] = classes_of[s_pos[follows]] != TokenClass.IMAGE
        # Blank runs take the next non-space character's class; other whitespace keeps its own first character.
        pos[spaces_only] = np.where(follows, s_pos, s_start)
    classes = np.zeros(starts.shape[0], dtype=np.uint8)
    has_chars = ends > starts
    classes[has_chars] = classes_of[pos[has_chars]]
    return _pieces(classes, counts)


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batch-encode rendered texts (special tokens in the text are recognised; nothing is added around them).

    Calls the Rust tokenizer directly: the transformers wrapper converts every encoding to Python lists and
    back, which cost more than the tokenization itself in the compile profile.
    """
    return _encode(tokenizer, texts, add_special_tokens=False)


def _encode(tokenizer: Any, texts: Sequence[str], *, add_special_tokens: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    if not texts:
        return []
    ids, offsets, counts = _flat(_native_encode(tokenizer, texts, add_special_tokens=add_special_tokens))
    return list(zip(_pieces(ids, counts), _pieces(offsets, counts)))


def _pieces(flat: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """Views of `flat` cut into consecutive pieces of `counts` rows (np.split costs several times more)."""
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _native_encode(tokenizer: Any, texts: Sequence[str], *, add_special_tokens: bool) -> list:
    """The tokenizer's own batch encode: the Rust tokenizer's releases the GIL, so another thread's Python runs
    meanwhile (TokenizeJob). A tokenizer.model-only folder gives SentencePiece's (ids, offsets) pairs."""
    sp = getattr(tokenizer, "litdata_sentencepiece", None)
    if sp is not None:  # litdata/tokenize/sentencepiece.py
        return sp.encode_batch(texts, add_special_tokens=add_special_tokens)
    return tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)


_IDS, _OFFSETS = attrgetter("ids"), attrgetter("offsets")


def _flat(encodings: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def encode_rendered(tokenizer: Any, rendered: Sequence[Rendered], image_id: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, classes) for each rendered conversation, tokenized the way its template's reference code does
    (TokenizeJob, all in this thread)."""
    job = TokenizeJob(tokenizer, rendered, image_id)
    job.run_native()
    return job.result()


class TokenizeJob:
    """One batch of rendered conversations through the tokenizer, in three steps so that the native one can run
    in another thread while this one does Python work: the plan (here), `run_native` (the GIL-free batch encode
    calls, nothing else), and `result` (ids, offsets and classes read back).

    Plain renderings are one `encode_batch` call (what `apply_chat_template(tokenize=True)` does). LLaVA-style
    renderings are split at every `<image>` and all chunks of the batch go through one more `encode_batch` with
    the tokenizer's own special tokens, then are spliced as `tokenizer_image_token` splices them. The classes of
    all of them come from one `token_classes_many` call.
    """

    def __init__(self, tokenizer: Any, rendered: Sequence[Rendered], image_id: int) -> None:
        self.tokenizer, self.rendered, self.image_id = tokenizer, rendered, image_id
        self.plain = [i for i, r in enumerate(rendered) if not r.llava_chunks]
        self.chunked = [i for i, r in enumerate(rendered) if r.llava_chunks]
        self.cuts = [_chunk_starts(rendered[i].text) for i in self.chunked]
        self.bos = _bos_policy(tokenizer) if self.chunked else (None, False)
        self._texts = ([rendered[i].text for i in self.plain],
                       [rendered[i].text[a:b] for i, cuts in zip(self.chunked, self.cuts) for a, b in cuts])
        self._native: tuple[list, list] | None = None

    def run_native(self) -> None:
        plain, chunks = self._texts
        self._native = (_native_encode(self.tokenizer, plain, add_special_tokens=False) if plain else [],
                        _native_encode(self.tokenizer, chunks, add_special_tokens=True) if chunks else [])

    def result(self) -> list[tuple[np.ndarray, np.ndarray]]:
        assert self._native is not None, "run_native first"
        plain, chunks = self._native
        encoded: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.rendered)  # (ids, offsets)
        if plain:
            ids, offsets, counts = _flat(plain)
            for i, got in zip(self.plain, zip(_pieces(ids, counts), _pieces(offsets, counts))):
                encoded[i] = got
        if chunks:
            _splice_batch(_flat(chunks), self.cuts, self.image_id, self.bos, encoded, self.chunked)
        done = [e for e in encoded if e is not None]
        assert len(done) == len(self.rendered)
        classes = token_classes_many([r.text for r in self.rendered], [r.char_classes for r in self.rendered],
                                     [offsets for _, offsets in done])
        return [(ids, c) for (ids, _), c in zip(done, classes)]


def _splice_batch(flat: tuple[np.ndarray, np.ndarray, np.ndarray], starts: list, image_id: int,
                  bos: tuple[int | None, bool], encoded: list, at: Sequence[int]) -> None:
    """encoded[at[k]] = (ids, offsets) of text k from its chunks' encodings (all chunks of the batch end to end
    in `flat`), as `tokenizer_image_token` splices them."""
    ids, offsets, counts = flat
    n_cuts = np.fromiter(map(len, starts), dtype=np.int64, count=len(starts))
    first_piece = np.cumsum(n_cuts) - n_cuts
    bos_id, prepend = bos
    # A text without images is its one chunk (every text-only record): what _splice_chunks would make of it is
    # done here for all such texts at once, so that each is a view of the batch's arrays.
    single = first_piece[n_cuts == 1]
    piece_start = np.cumsum(counts) - counts
    if prepend:  # BOS in front, with an empty span
        ids = np.insert(ids, piece_start[single], bos_id)
        offsets = _insert_rows(offsets, piece_start[single], 0)
        counts = counts.copy()
        counts[single] += 1
    elif bos_id is not None:  # the tokenizer's own BOS stays, with an empty span
        head = piece_start[single[counts[single] > 0]]
        offsets[head[ids[head] == bos_id]] = 0
    parts = list(zip(_pieces(ids, counts), _pieces(offsets, counts)))
    for i, chunk_cuts, j in zip(at, starts, first_piece.tolist()):
        if len(chunk_cuts) == 1:
            encoded[i] = parts[j]
        else:
            encoded[i] = _splice_chunks(chunk_cuts, parts[j : j + len(chunk_cuts)], image_id, bos)


def _insert_rows(a: np.ndarray, at: np.ndarray, value: int) -> np.ndarray:
    """`np.insert(a, at, value, axis=0)` for sorted `at`. Each row moves as one item (a view as `np.void` of its
    size): np.insert moves the rows of a 2-D array through a 2-D boolean mask, ten times slower on a batch's
    offsets."""
    width = int(np.prod(a.shape[1:], dtype=np.int64))
    row = np.dtype((np.void, width * a.dtype.itemsize))
    items = np.ascontiguousarray(a).reshape(a.shape[0], width).view(row)[:, 0]
    k = at.shape[0]
    new = at + np.arange(k)  # where the inserted rows land, each after those inserted before it
    out = np.empty(items.shape[0] + k, dtype=row)
    out[new] = np.full((1, width), value, dtype=a.dtype).view(row)[0, 0]
    old = np.ones(out.shape[0], dtype=bool)
    old[new] = False
    out[old] = items
    return out.view(a.dtype).reshape(-1, *a.shape[1:])


def _chunk_starts(text: str) -> list[tuple[int, int]]:
    """(start, end) of the text between `<image>` placeholders, as `prompt.split('<image>')` cuts it."""
    cuts, at = [], 0
    while True:
        k = text.find(IMAGE_PLACEHOLDER, at)
        if k < 0:
            cuts.append((at, len(text)))
            return cuts
        cuts.append((at, k))
        at = k + len(IMAGE_PLACEHOLDER)


def _bos_policy(tokenizer: Any) -> tuple[int | None, bool]:
    """(BOS id, whether litdata must prepend it): a LLaMA tokenizer adds BOS itself; one that has a BOS token but
    does not add it (the bundled demo tokenizer) gets it prepended, since vicuna_v1 is a LLaMA template."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None, False
    probe = _encode(tokenizer, ["a"], add_special_tokens=True)[0][0]
    return int(bos), not (probe.shape[0] and int(probe[0]) == bos)


def _splice_chunks(cuts, parts, image_id: int, bos: tuple[int | None, bool]) -> tuple[np.ndarray, np.ndarray]:
    """LLaVA's `tokenizer_image_token`: if the first chunk starts with BOS, keep it once and drop the first token
    of every chunk; put the image id between chunks. Offsets move from chunk to text coordinates (an image id
    gets its `<image>` tag's span), so the classes come from the text as a whole. Returns (ids, offsets)."""
    bos_id, prepend = bos
    first = parts[0][0]
    drop = 1 if not prepend and first.shape[0] and bos_id is not None and int(first[0]) == bos_id else 0
    ids_out: list = [[bos_id]] if prepend else [first[:1]] if drop else []
    offs_out: list = [np.zeros((1, 2), dtype=np.int64)] if (prepend or drop) else []
    for k, ((a, _), (ids, offs)) in enumerate(zip(cuts, parts)):
        if k:
            ids_out.append([image_id])
            offs_out.append(np.array([[a - len(IMAGE_PLACEHOLDER), a]], dtype=np.int64))
        ids_out.append(ids[drop:])
        offs_out.append(offs[drop:] + a)
    ids = np.concatenate(ids_out).astype(np.int32)
    return ids, np.concatenate(offs_out)
