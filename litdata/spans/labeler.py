"""The seam the compile pipeline calls: task-template and harmful spans inside the turns of a record.

Spans are whole sentences (see sentences.py). Template labels go to user-turn sentences whose shape, or
colon-prefix shape, is a template shape. Harmful labels go to sentences of any turn that a lexicon phrase
matches or the model scores at or above the threshold; harmful wins over template. When every sentence of a
turn is labelled, the labels are widened over the whitespace between them, so that nothing of such a turn
(except its `<image>` tags, which get the image class as token classes) keeps the instruction class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from litdata.classes import TokenClass
from litdata.spans.harmful import ModelDetector, build_matcher
from litdata.spans.sentences import Sentence, SentenceSplitter, shared_nlp
from litdata.config import HarmfulSettings
from litdata.spans.shapes import matching_template
from litdata.records.conversation import IMAGE_PLACEHOLDER, Role

__all__ = ["SpanLabel", "TurnLabeler"]

_IMAGE_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))
_SCORE_CACHE_SIZE = 100_000
_SHAPE_CACHE_SIZE = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanLabel:
    start: int  # character offsets relative to the turn text
    end: int
    cls: TokenClass  # TASK_TEMPLATE (user turns only) or HARMFUL (any turn)
    matcher: str  # "template", "lexicon:<phrase>", "model:<name>": what found it, for the audit file
    score: float | None = None  # model probability of the harmful label, when a model ran
    shape: str | None = None  # normalised template shape, for templates


class TurnLabeler:
    """Labels the turns of records. Picklable: only the spec travels, spaCy and the model are rebuilt lazily."""

    def __init__(self, *, template_shapes: frozenset[str], harmful: HarmfulSettings | None) -> None:
        self.template_shapes = frozenset(template_shapes)
        self.harmful = harmful if harmful is not None and harmful.active else None
        self._splitter: SentenceSplitter | None = None
        self._model: ModelDetector | None = None
        self._scores: dict[str, float] = {}
        self._shapes: dict[str, str | None] = {}  # sentence -> matching_template(sentence), bounded
        self._anchors = _anchors(self.template_shapes, self.harmful.phrases if self.harmful else ())
        self._shortest = min(map(len, self._anchors), default=0) if self._anchors is not None else 0

    def _turn_anchors(self, text: str) -> tuple[str, ...] | None:
        """The anchors that `text` contains once case and whitespace are ignored; None when every segment needs
        spaCy (some template has no anchor, or a model scores every sentence).

        A segment holding a template sentence contains the template's longest literal piece, and a PhraseMatcher
        hit contains its phrase, both once case and whitespace are ignored. A segment's whitespace-free form is
        a substring of its turn's, so a turn that contains no anchor needs no spaCy at all, and the segments of
        the others need only be checked for the anchors their turn contains. Both skips are exact."""
        if self._anchors is None or (self.harmful is not None and self.harmful.model_path):
            return None
        lower = text.lower()
        if len(lower) < self._shortest:  # short answers ("Yes", "left") hold no anchor
            return ()
        flat = "".join(lower.split())
        return tuple(a for a in self._anchors if a in flat)

    def __getstate__(self) -> dict:
        return {"template_shapes": self.template_shapes, "harmful": self.harmful}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def load(self) -> None:
        """Build spaCy (and the model) now rather than at the first turn that needs them, when anything is looked
        for at all; a caller that settles its heap after start-up (encode.py) wants them built first."""
        if self.harmful or self.template_shapes:
            self._ensure_loaded()

    def _ensure_loaded(self) -> SentenceSplitter:
        if self._splitter is None:
            nlp = shared_nlp()
            matcher = build_matcher(nlp, self.harmful.phrases) if self.harmful else None
            if self.harmful and self.harmful.model_path:
                self._model = ModelDetector(
                    self.harmful.model_path,
                    harmful_label=self.harmful.harmful_label,
                    batch_size=self.harmful.batch_size,
                )
            self._splitter = SentenceSplitter(nlp, matcher)
        return self._splitter

    def label(self, turns: Sequence[tuple[Role, str]]) -> list[list[SpanLabel]]:
        """One sorted, non-overlapping list of labels per turn."""
        return self.label_many([turns])[0]

    def label_many(self, records: Sequence[Sequence[tuple[Role, str]]]) -> list[list[list[SpanLabel]]]:
        """`label` for many records at once (one spaCy pass and one model pass for all of them)."""
        flat = [(role, text) for turns in records for role, text in turns]
        wanted = [i for i, (role, _) in enumerate(flat) if self.harmful or (role is Role.USER and self.template_shapes)]
        found = [self._turn_anchors(flat[i][1]) for i in wanted]
        todo = [(i, hits) for i, hits in zip(wanted, found) if hits != ()]  # a turn without anchors has no label
        sentences: list[list[Sentence]] = [[] for _ in flat]
        if todo:  # no spaCy load (a few hundred MB per worker) when there is nothing to look for

            def needs_spacy(k: int, segment: str) -> bool:
                hits = todo[k][1]
                if hits is None:
                    return True
                segment_flat = "".join(segment.lower().split())
                return any(a in segment_flat for a in hits)

            splitter = self._ensure_loaded()
            for (i, _), sents in zip(todo, splitter.split([flat[i][1] for i, _ in todo], needs_spacy)):
                sentences[i] = sents
        scores = self._model_scores(flat, sentences)
        labels = [self._turn_labels(role, text, sents, scores) for (role, text), sents in zip(flat, sentences)]
        out, pos = [], 0
        for turns in records:
            out.append(labels[pos : pos + len(turns)])
            pos += len(turns)
        return out

    def _model_scores(self, flat: Sequence[tuple[Role, str]], sentences: list[list[Sentence]]) -> dict[str, float]:
        """Model score per distinct sentence text (cached across calls: templates repeat)."""
        if self._model is None:
            return {}
        texts = dict.fromkeys(text[s.start : s.end] for (_, text), sents in zip(flat, sentences) for s in sents)
        todo = [t for t in texts if t not in self._scores]
        if len(self._scores) + len(todo) > _SCORE_CACHE_SIZE:
            self._scores.clear()
        fresh = dict(zip(todo, self._model.scores(todo)))
        self._scores.update(fresh)
        return {t: fresh[t] if t in fresh else self._scores[t] for t in texts}

    def _turn_labels(
        self, role: Role, text: str, sentences: list[Sentence], scores: dict[str, float]
    ) -> list[SpanLabel]:
        labels: list[SpanLabel] = []
        for s in sentences:
            if not s.searched:  # a segment without anchors: no lexicon hit, no model (see _turn_anchors), no template
                continue
            sentence = text[s.start : s.end]
            score = scores.get(sentence)
            threshold = self.harmful.threshold if self.harmful else 1.0
            if s.lexicon_hit is not None:
                labels.append(
                    SpanLabel(
                        start=s.start,
                        end=s.end,
                        cls=TokenClass.HARMFUL,
                        matcher=f"lexicon:{s.lexicon_hit}",
                        score=score,
                    )
                )
            elif score is not None and score >= threshold:
                assert self._model is not None
                labels.append(
                    SpanLabel(start=s.start, end=s.end, cls=TokenClass.HARMFUL, matcher=self._model.name, score=score)
                )
            elif role is Role.USER and self.template_shapes:
                shape = self._template_of(sentence)
                if shape is not None:
                    labels.append(
                        SpanLabel(
                            start=s.start, end=s.end, cls=TokenClass.TASK_TEMPLATE, matcher="template", shape=shape
                        )
                    )
        if labels and len(labels) == len(sentences):
            labels = _widen(text, labels)
        return labels


    def _template_of(self, sentence: str) -> str | None:
        """matching_template, remembered per sentence: template sentences repeat in most records."""
        if sentence in self._shapes:
            return self._shapes[sentence]
        if len(self._shapes) >= _SHAPE_CACHE_SIZE:
            self._shapes.clear()  # cheaper than LRU bookkeeping; the frequent sentences come back at once
        shape = self._shapes[sentence] = matching_template(sentence, self.template_shapes)
        return shape


def _widen(text: str, labels: list[SpanLabel]) -> list[SpanLabel]:
    """Stretch labels over the gaps between them, up to the text edges and `<image>` tags (not over them)."""
    from dataclasses import replace

    walls = sorted({0, len(text)} | {p for m in _IMAGE_RE.finditer(text) for p in (m.start(), m.end())})
    out: list[SpanLabel] = []
    for i, lab in enumerate(labels):
        left = max(w for w in walls if w <= lab.start)
        if out:
            left = max(left, out[-1].end)  # the gap before a label already went to the previous one
        right = min(w for w in walls if w >= lab.end)
        if i + 1 < len(labels):
            right = min(right, labels[i + 1].start)
        out.append(replace(lab, start=left, end=right))
    return out


_PLACEHOLDER_RE = re.compile(r"<num>|<box>|<arg>")


def _anchors(template_shapes: frozenset[str], phrases: Sequence[str]) -> tuple[str, ...] | None:
    """Lower-cased, whitespace-free pieces one of which every matching segment contains; None: no such
    piece exists for some template (a shape made only of placeholders), so every segment needs spaCy."""
    out = []
    for shape in template_shapes:
        piece = max(("".join(part.split()) for part in _PLACEHOLDER_RE.split(shape)), key=len)
        if not piece:
            return None
        out.append(piece)
    out.extend("".join(p.lower().split()) for p in phrases)
    return tuple(dict.fromkeys(a for a in out if a))
