from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from litdata.classes import TokenClass
from litdata.records import Conversation, Role
from litdata.records.conversation import IMAGE_PLACEHOLDER

_IMAGE_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))


class TemplateError(ValueError):
    """The template cannot render this record (the pipeline turns it into a `template_error` reject)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Rendered:
    """A rendered conversation and how its reference training code tokenizes it (litdata/tokenize/tokens.py).

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
        self._spans: list[tuple[int, int, int]] = []
        self._len = 0

    def add(self, text: str, cls: TokenClass = TokenClass.MARKUP) -> None:
        n = len(text)
        if not n:
            return
        if cls:  # markup is class 0, what `build` starts every character with
            self._spans.append((self._len, self._len + n, int(cls)))
        self._parts.append(text)
        self._len += n

    def add_turn(self, text: str, cls: TokenClass, labels: Sequence[TurnLabel] = ()) -> None:
        start = self._len
        self.add(text, cls)
        for s, e, c in labels:
            self._spans.append((start + s, start + e, int(c)))
        if IMAGE_PLACEHOLDER in text:  # most turns hold none; the test is cheaper than a regex scan
            for m in _IMAGE_RE.finditer(text):
                self._spans.append((start + m.start(), start + m.end(), int(TokenClass.IMAGE)))

    def build(self, *, llava_chunks: bool = False, trimmed: Sequence[int] = ()) -> Rendered:
        text = "".join(self._parts)
        classes = np.zeros(len(text), dtype=np.uint8)
        for s, e, c in self._spans:  # later spans overwrite earlier ones: turn < labels < images
            classes[s:e] = c
        return Rendered(text=text, char_classes=classes, llava_chunks=llava_chunks, trimmed=tuple(trimmed))


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
