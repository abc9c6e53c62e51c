"""One class per token, from the rendered text's character classes and the tokens' offsets (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from litdata.classes import TokenClass
from litdata.tokenize.tokens import cut_rows

_SPACE_CODEPOINTS = np.array([9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x3000], dtype=np.uint32)

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
    return cut_rows(classes, counts)
