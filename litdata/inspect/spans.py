"""A document's tokens as readable spans: runs of one class and one weight, decoded back to text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from litdata.classes import TokenClass
from litdata.inspect.reader import PackedDocument


@dataclass(frozen=True, kw_only=True)
class Span:
    cls: TokenClass
    weight: float
    start: int  # token offsets in the document
    stop: int
    text: str  # decoded text ('' for an image placeholder)
    image: int | None = None  # 1-based image number in the document, for an image placeholder
    pieces: tuple[str, ...] | None = None  # per-token text when asked for and when it joins back to `text`

    @property
    def n_tokens(self) -> int:
        return self.stop - self.start


class Decoder:
    """Decodes token ids without dropping special tokens, so markup such as `<s>` stays visible."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer

    def text(self, ids: np.ndarray) -> str:
        return self.tok.decode(ids.tolist(), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def pieces(self, ids: np.ndarray, joined: str) -> tuple[str, ...] | None:
        # A character split over two byte-level tokens decodes to U+FFFD on its own; then only the whole
        # span reads right, and the caller falls back to per-span hover.
        parts = self.tok.batch_decode([[i] for i in ids.tolist()], skip_special_tokens=False,
                                      clean_up_tokenization_spaces=False)
        return tuple(parts) if "".join(parts) == joined else None


def document_spans(doc: PackedDocument, decoder: Decoder, *, image_token_id: int, weights: np.ndarray | None = None,
                   per_token: bool = False) -> list[Span]:
    """Cut where the class or the weight changes and around every image placeholder, then decode each run.

    `weights` replaces the stored weights (to show another mode); decoding run by run keeps words whole.
    """
    w = doc.weights if weights is None else weights
    n = len(doc.tokens)
    if n == 0:
        return []
    is_img = doc.tokens == image_token_id
    cut = (doc.classes[1:] != doc.classes[:-1]) | (w[1:] != w[:-1]) | is_img[1:] | is_img[:-1]
    starts = np.concatenate([[0], np.flatnonzero(cut) + 1])
    stops = np.concatenate([starts[1:], [n]])
    spans, image_no = [], 0
    for a, b in zip(starts.tolist(), stops.tolist()):
        cls, weight = TokenClass(int(doc.classes[a])), float(w[a])
        if is_img[a]:
            image_no += 1
            spans.append(Span(cls=cls, weight=weight, start=a, stop=b, text="", image=image_no))
            continue
        ids = doc.tokens[a:b]
        text = decoder.text(ids)
        spans.append(Span(cls=cls, weight=weight, start=a, stop=b, text=text,
                          pieces=decoder.pieces(ids, text) if per_token else None))
    return spans
