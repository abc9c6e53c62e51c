"""Anchors: literal pieces that any text holding a template sentence or a lexicon phrase must contain.

A sentence whose shape is a template shape contains the template's longest literal piece, and a PhraseMatcher
hit contains its phrase, both once the text is folded: lower-cased, whitespace removed, final sigma made
plain sigma. So a text without any anchor holds neither, and the labeller can skip it (no spaCy, no shape).

Folding is per character: `str.lower` is, except for 'Σ', which lowers to 'ς' or 'σ' by its neighbours, and
spaCy lowers each token alone while the shape lowers the whole sentence; mapping 'ς' to 'σ' on both sides
makes the test hold whatever the context. So a segment's fold is a substring of its turn's fold, and the turns
of a whole batch can be folded and searched as one string (an anchor holds no separator, so no match spans
two turns): one `in` per anchor over the batch instead of one per anchor and turn.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

_PLACEHOLDER_RE = re.compile(r"<num>|<box>|<arg>")
# What str.split() splits on (str.isspace), listed: finding them among all code points at import cost 0.1 s
# per process (tests/spans/test_anchors.py checks the list).
WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000"
)
# str.translate table for fold(): whitespace deleted, 'ς' -> 'σ'.
_FOLD = {ord(c): None for c in WHITESPACE} | {ord("ς"): "σ"}
# Turn separators for the batch string: control characters that are neither whitespace (folding would
# delete them) nor cased nor case-ignorable (so lower() of the joined batch is the join of each turn's).
_SEPARATORS = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f"


def fold(text: str) -> str:
    return text.lower().translate(_FOLD)


def template_anchor(shape: str) -> str | None:
    """The folded longest literal piece of a template shape; None for a shape made only of placeholders. A shape
    is lower-case already (it is lowered once, as the sentence was), so it is folded without lowering again."""
    return max((part.translate(_FOLD) for part in _PLACEHOLDER_RE.split(shape)), key=len) or None


@dataclass(frozen=True, slots=True)
class Anchors:
    templates: tuple[str, ...] | None  # None: some template has no anchor, so any user segment may hold one
    phrases: tuple[str, ...]

    @classmethod
    def build(cls, template_shapes: Iterable[str], phrases: Sequence[str]) -> Anchors:
        pieces = [template_anchor(shape) for shape in sorted(template_shapes)]
        templates = None if None in pieces else tuple(dict.fromkeys(p for p in pieces if p))
        return cls(templates=templates, phrases=tuple(dict.fromkeys(p for p in map(fold, phrases) if p)))

    def all(self) -> tuple[str, ...]:
        """Every anchor (template anchors only when every template has one)."""
        return tuple(dict.fromkeys((*(self.templates or ()), *self.phrases)))

    def texts_with_any(self, texts: Sequence[str]) -> tuple[set[str], tuple[str, ...]]:
        """(the texts that contain an anchor, the anchors that any of them contains)."""
        anchors = self.all()
        distinct = list(dict.fromkeys(texts))
        sep = next((c for c in _SEPARATORS if not any(c in a for a in anchors)), None)
        joined = sep.join(distinct) if sep is not None else None
        if joined is None or joined.count(sep) != len(distinct) - 1:  # a text holds the separator: one by one
            folded = [fold(t) for t in distinct]
            present = [a for a in anchors if any(a in f for f in folded)]
            return {t for t, f in zip(distinct, folded) if any(a in f for a in present)}, tuple(present)
        flat = fold(joined)
        present = [a for a in anchors if a in flat]
        if not present:  # many batches of answers: one scan per anchor and done
            return set(), ()
        ends = list(accumulate(len(f) + 1 for f in flat.split(sep)))  # where each text's fold ends, + 1
        hit: set[int] = set()
        for a in present:  # one find per text holding an anchor, not one test per text and anchor
            at = flat.find(a)
            while at >= 0:
                k = bisect_right(ends, at)
                hit.add(k)
                at = flat.find(a, ends[k])  # on to the next text: more hits in this one add nothing
        return {distinct[k] for k in hit}, tuple(present)
