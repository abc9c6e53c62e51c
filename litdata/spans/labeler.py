"""The seam the compile pipeline calls: task-template and harmful spans inside the turns of a record.

Spans are whole sentences (see sentences.py). Template labels go to user-turn sentences whose shape, or
colon-prefix shape, is a template shape. Harmful labels go to sentences of any turn that a lexicon phrase
matches or the model scores at or above the threshold; harmful wins over template. When every sentence of a
turn is labelled, the labels are widened over the whitespace between them, so that nothing of such a turn
(except its `<image>` tags, which get the image class as token classes) keeps the instruction class.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from litdata.classes import TokenClass
from litdata.config import HarmfulSettings
from litdata.records.conversation import IMAGE_PLACEHOLDER, Role
from litdata.spans.anchors import Anchors, fold
from litdata.spans.harmful import ModelDetector, build_matcher
from litdata.spans.memo import MINED
from litdata.spans.sentences import Sentence, SentenceSplitter, segments, shared_nlp
from litdata.spans.shapes import matching_template, template_of

__all__ = ["SpanLabel", "TurnLabeler"]

_IMAGE_RE = re.compile(re.escape(IMAGE_PLACEHOLDER))
_SCORE_CACHE_SIZE = 100_000
_SHAPE_CACHE_SIZE = 100_000
_SEGMENT_CACHE_SIZE = 20_000
_LABEL_CACHE_SIZE = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanLabel:
    start: int  # character offsets relative to the turn text
    end: int
    cls: TokenClass  # TASK_TEMPLATE (user turns only) or HARMFUL (any turn)
    matcher: str  # "template", "lexicon:<phrase>", "model:<name>": what found it, for the audit file
    score: float | None = None  # model probability of the harmful label, when a model ran
    shape: str | None = None  # normalised template shape, for templates


# What a segment (a trimmed piece of a turn between newlines and `<image>` tags) contributes to its turn: its
# labels as (start, end, class, matcher, shape) relative to the segment, and whether they cover every one of
# its sentences (a turn is widened only when all of its segments are covered).
_SegmentLabels = tuple[tuple[tuple[int, int, TokenClass, str, str | None], ...], bool]
_NOTHING: _SegmentLabels = ((), False)


class TurnLabeler:
    """Labels the turns of records. Picklable: only the spec travels, spaCy and the model are rebuilt lazily."""

    def __init__(self, *, template_shapes: frozenset[str], harmful: HarmfulSettings | None) -> None:
        self.template_shapes = frozenset(template_shapes)
        self.harmful = harmful if harmful is not None and harmful.active else None
        self._splitter: SentenceSplitter | None = None
        self._model: ModelDetector | None = None
        self._scores: dict[str, float] = {}
        self._shapes: dict[str, str | None] = {}  # sentence -> matching_template(sentence), bounded
        # Per template-checked? (user turns): segment -> what it contributes, bounded. Template lines repeat in
        # most records.
        self._segments: tuple[dict[str, _SegmentLabels], dict[str, _SegmentLabels]] = ({}, {})
        self._labels: dict[tuple[int, int, TokenClass, str, str | None], SpanLabel] = {}  # shared, bounded
        self._anchors = Anchors.build(self.template_shapes, self.harmful.phrases if self.harmful else ())

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
        if self.harmful is not None and self.harmful.model_path:
            labels = self._label_with_model(flat)
        else:
            labels = self._label_by_anchors(flat)
        out, pos = [], 0
        for turns in records:
            out.append(labels[pos : pos + len(turns)])
            pos += len(turns)
        return out

    def _label_by_anchors(self, flat: Sequence[tuple[Role, str]]) -> list[list[SpanLabel]]:
        """Labels without a model: only segments holding an anchor (anchors.py) can hold a label, so only the
        turns that hold one are cut into segments, and only their segments that hold one reach spaCy. What a
        segment contributes depends on its text alone, so it is remembered across batches."""
        labels: list[list[SpanLabel]] = [[] for _ in flat]
        templates = bool(self.template_shapes)
        every_user_turn = templates and self._anchors.templates is None  # a template without an anchor
        user = Role.USER  # an enum member looked up once, not per turn
        if self.harmful:
            wanted = list(range(len(flat)))
        else:
            wanted = [i for i, (role, _) in enumerate(flat) if templates and role is user]
        if not wanted:
            return labels  # no spaCy load (a few hundred MB per worker) when there is nothing to look for
        hit, present = self._anchors.texts_with_any([flat[i][1] for i in wanted])
        todo = [i for i in wanted if flat[i][1] in hit or (every_user_turn and flat[i][0] is user)]
        # Per turn to label: (turn, template-checked?, its segments and their texts), and what each distinct
        # segment contributes, per template-checked? (user turns) or not.
        turns: list[tuple[int, bool, list[tuple[int, str]]]] = []
        found: tuple[dict[str, _SegmentLabels], dict[str, _SegmentLabels]] = ({}, {})
        missing: tuple[dict[str, None], dict[str, None]] = ({}, {})
        for i in todo:
            role, text = flat[i]
            checked = templates and role is user
            known, cache, miss = found[checked], self._segments[checked], missing[checked]
            segs = [(a, text[a:b]) for a, b in segments(text)]
            turns.append((i, checked, segs))
            for _, seg in segs:
                if seg not in known and seg not in miss:
                    got = cache.get(seg)
                    if got is None:
                        miss[seg] = None
                    else:
                        known[seg] = got
        for checked in (False, True):
            fresh = self._segment_labels(list(missing[checked]), checked, present)
            cache = self._segments[checked]
            if len(cache) + len(fresh) > _SEGMENT_CACHE_SIZE:
                cache.clear()  # cheaper than LRU bookkeeping; the frequent segments come back at once
            cache.update(fresh)
            found[checked].update(fresh)
        made = self._labels
        if len(made) > _LABEL_CACHE_SIZE:
            made.clear()  # cheaper than LRU bookkeeping; the frequent labels come back at once
        for i, checked, segs in turns:
            known = found[checked]
            turn: list[tuple[int, int, TokenClass, str, str | None]] = []
            covered = True
            for a, seg in segs:
                rel, whole = known[seg]
                covered = covered and whole
                for s0, s1, cls, matcher, shape in rel:
                    turn.append((a + s0, a + s1, cls, matcher, shape))
            if not turn:
                continue
            if covered:
                bounds = _widened(flat[i][1], [(start, end) for start, end, _, _, _ in turn])
                turn = [(start, end, *rest) for (start, end), (_, _, *rest) in zip(bounds, turn)]
            # A SpanLabel is immutable, so equal ones are shared: building one (a frozen dataclass) costs ten
            # times a dictionary look-up, and the same template label recurs at the same offsets in many turns.
            out = labels[i]
            for key in turn:
                lab = made.get(key)
                if lab is None:
                    start, end, cls, matcher, shape = key
                    lab = made[key] = SpanLabel(start=start, end=end, cls=cls, matcher=matcher, shape=shape)
                out.append(lab)
        return labels

    def _segment_labels(self, segs: list[str], checked: bool, present: tuple[str, ...]) -> dict[str, _SegmentLabels]:
        """What each segment contributes (`checked`: whether its sentences may be templates, in a user turn);
        `present`: the anchors found in the batch, a superset of those of any of its segments."""
        phrases = [a for a in present if a in self._anchors.phrases]
        pieces = self._anchors.templates
        tpl_pieces = None if pieces is None else [a for a in present if a in pieces]
        out: dict[str, _SegmentLabels] = {}
        search: list[tuple[str, bool, bool]] = []  # segment, lexicon?, templates?
        templates = self.template_shapes
        for seg in segs:
            if checked and not phrases and (mined := MINED.get(seg)) is not None:
                # What the mining pass found in this segment (memo.py): the sentences the splitter would give
                # (same pipeline, no matcher) and their shapes, so no fold, spaCy or shape work is left.
                rel = []
                for s0, s1, full, prefix in mined:
                    shape = template_of(full, prefix, templates)
                    if shape is not None:
                        rel.append((s0, s1, TokenClass.TASK_TEMPLATE, "template", shape))
                out[seg] = (tuple(rel), len(rel) == len(mined)) if rel else _NOTHING
                continue
            f = fold(seg)
            lexicon = any(p in f for p in phrases)
            template = checked and (tpl_pieces is None or any(p in f for p in tpl_pieces))
            if lexicon or template:
                search.append((seg, lexicon, template))
            else:
                out[seg] = _NOTHING
        if not search:
            return out
        splitter = self._ensure_loaded()
        split = splitter.split_segments([seg for seg, _, _ in search], [lexicon for _, lexicon, _ in search])
        for (seg, _, template), sents in zip(search, split):
            rel = []
            for s in sents:
                if s.lexicon_hit is not None:
                    rel.append((s.start, s.end, TokenClass.HARMFUL, f"lexicon:{s.lexicon_hit}", None))
                elif template and (shape := self._template_of(seg[s.start : s.end])) is not None:
                    rel.append((s.start, s.end, TokenClass.TASK_TEMPLATE, "template", shape))
            out[seg] = (tuple(rel), len(rel) == len(sents))
        return out

    def _label_with_model(self, flat: Sequence[tuple[Role, str]]) -> list[list[SpanLabel]]:
        """Labels when a model scores sentences: every sentence of every turn looked at is scored."""
        wanted = [i for i, (role, _) in enumerate(flat) if self.harmful or (role is Role.USER and self.template_shapes)]
        sentences: list[list[Sentence]] = [[] for _ in flat]
        if wanted:
            for i, sents in zip(wanted, self._ensure_loaded().split([flat[i][1] for i in wanted])):
                sentences[i] = sents
        scores = self._model_scores(flat, sentences)
        return [self._turn_labels(role, text, sents, scores) for (role, text), sents in zip(flat, sentences)]

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
    bounds = _widened(text, [(lab.start, lab.end) for lab in labels])
    return [
        SpanLabel(start=left, end=right, cls=lab.cls, matcher=lab.matcher, score=lab.score, shape=lab.shape)
        for (left, right), lab in zip(bounds, labels)
    ]


def _widened(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The (start, end) of sorted, non-overlapping `spans` stretched as `_widen` stretches labels."""
    if IMAGE_PLACEHOLDER in text:
        walls = sorted({0, len(text)} | {p for m in _IMAGE_RE.finditer(text) for p in (m.start(), m.end())})
    else:
        walls = [0, len(text)]  # most turns: no scan
    out: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(spans):
        left = walls[bisect_right(walls, start) - 1]
        if out:
            left = max(left, out[-1][1])  # the gap before a span already went to the previous one
        right = walls[bisect_left(walls, end)]
        if i + 1 < len(spans):
            right = min(right, spans[i + 1][0])
        out.append((left, right))
    return out
