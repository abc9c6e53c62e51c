from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from litdata.classes import TokenClass
from litdata.records import Conversation, Role
from litdata.records.conversation import IMAGE_PLACEHOLDER

_IMAGE_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))
_FILL = [bytes((c,)) for c in range(256)]  # _FILL[class] * n: n characters of that class


class TemplateError(ValueError):
    """The template cannot render this record (the pipeline turns it into a `template_error` reject)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Rendered:
    """A rendered conversation and how its reference training code tokenizes it (litdata/tokenize/batch.py).

    `llava_chunks=False`: the whole text with no special tokens added, as `apply_chat_template(tokenize=True)`.
    `llava_chunks=True`: as LLaVA's `tokenizer_image_token`: the text is split at every `<image>`, each chunk is
    tokenized on its own with the tokenizer's own special tokens (BOS), and the image id is spliced in between.
    """

    text: str
    char_classes: np.ndarray  # uint8 [len(text)]: the class of every character
    llava_chunks: bool = False
    trimmed: tuple[int, ...] = ()  # turns whose surrounding whitespace the template trimmed (as its reference does)


# A label inside a turn's text: (start, end, class), offsets relative to the turn text.
TurnLabel = tuple[int, int, TokenClass]


class SpanBuilder:
    """Appends text pieces and remembers which class each character belongs to.

    Turn bodies get their default class (system / instruction / response), then the labeler's sub-spans
    (task templates, harmful) and the image placeholders are painted over them: image wins over everything,
    so a placeholder is never supervised whatever a labeler says.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._fills: list[bytes] = []  # one per part: its class before the sub-spans, one byte per character
        # Sub-spans in the order they were painted: (start, end, class, parts before them), in the whole text.
        self._spans: list[tuple[int, int, int, int]] = []
        self._len = 0
        self._inside = True  # every sub-span lies within the turn it was added with (see `build`)

    def add(self, text: str, cls: TokenClass = TokenClass.MARKUP) -> None:
        if text:
            self._parts.append(text)
            self._fills.append(_FILL[cls] * len(text))
            self._len += len(text)

    def add_turn(self, text: str, cls: TokenClass, labels: Sequence[TurnLabel] = ()) -> None:
        start = self._len
        self.add(text, cls)
        k = len(self._parts)
        for s, e, c in labels:
            self._spans.append((start + s, start + e, int(c), k))
            self._inside = self._inside and 0 <= s <= e <= len(text)
        if IMAGE_PLACEHOLDER in text:  # most turns hold none; the test is cheaper than a regex scan
            for m in _IMAGE_RE.finditer(text):
                self._spans.append((start + m.start(), start + m.end(), int(TokenClass.IMAGE), k))

    def build(self, *, llava_chunks: bool = False, trimmed: Sequence[int] = ()) -> Rendered:
        text = "".join(self._parts)
        if self._inside:
            # Each piece's class as bytes, joined, and the sub-spans painted over them (later ones win: turn <
            # labels < images): the same as painting everything in order, since no later piece overlaps a
            # sub-span. Bytes, not numpy, because a record is a few dozen characters' worth of numpy calls.
            fill = bytearray(b"".join(self._fills))
            for s, e, c, _ in self._spans:
                fill[s:e] = _FILL[c] * (e - s)  # same length: 0 <= s <= e <= len(text)
            classes = np.frombuffer(fill, dtype=np.uint8)
        else:
            lengths = np.fromiter(map(len, self._parts), dtype=np.int64, count=len(self._parts))
            classes = self._painted_in_order(np.concatenate(([0], np.cumsum(lengths))).tolist())
        return Rendered(text=text, char_classes=classes, llava_chunks=llava_chunks, trimmed=tuple(trimmed))

    def _painted_in_order(self, bounds: list[int]) -> np.ndarray:
        """A labeler's span reaching outside its turn: everything painted in the order it was added, so that the
        pieces after it paint over it as they always did."""
        classes = np.zeros(bounds[-1], dtype=np.uint8)
        spans = iter(self._spans + [(0, 0, 0, len(self._parts) + 1)])
        span = next(spans)
        for j, cls in enumerate([f[0] for f in self._fills] + [0]):
            while span[3] <= j:  # added before piece j
                classes[span[0] : span[1]] = span[2]
                span = next(spans)
            if cls:
                classes[bounds[j] : bounds[j + 1]] = cls
        return classes


def trim_turn(text: str, labels: Sequence[TurnLabel]) -> tuple[str, list[TurnLabel]]:
    """Jinja's `| trim` (Python's `str.strip()`), with the labeler's sub-spans moved and clipped to match."""
    lead = len(text) - len(text.lstrip())
    body = text.strip()
    moved = [(max(s - lead, 0), min(e - lead, len(body)), c) for s, e, c in labels]
    return body, [(s, e, c) for s, e, c in moved if e > s]


_BODY_CLASS = {Role.SYSTEM: TokenClass.SYSTEM, Role.USER: TokenClass.INSTRUCTION, Role.ASSISTANT: TokenClass.RESPONSE}


def body_class(role: Role) -> TokenClass:
    return _BODY_CLASS[role]


class ChatTemplate(Protocol):
    name: str

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        """Render `conv`; `labels[i]` are the labeler's sub-spans of turn i (relative to its text)."""
        ...
