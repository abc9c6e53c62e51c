"""Sentence splitting of turn text with spaCy's blank English pipeline and its rule-based sentencizer.

No model is downloaded: `spacy.blank("en")` gives the tokenizer, the `sentencizer` splits after `.`, `!`,
`?` and friends. Two things are added around it because LLaVA-shaped turns need them:

* newlines are sentence boundaries too (the sentencizer treats "\\n" as whitespace, so an option list
  "A. cat\\nB. dog" followed by "Answer with the option's letter ..." would otherwise become one sentence);
* the `<image>` placeholder is never part of a sentence (the pipeline gives it its own class).

So a turn is first cut into *segments* (text between newlines and `<image>` tags, trimmed), and each segment
is sentencized. Segments repeat a lot in instruction data (the templates themselves), so results are kept in
a bounded cache keyed by the segment text.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from litdata.records.conversation import IMAGE_PLACEHOLDER

_OPENING = frozenset("([{\"'“‘")


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int  # character offsets into the text the sentence was found in
    end: int
    lexicon_hit: str | None = None  # the lexicon phrase matched inside the sentence, if any


def make_nlp():
    """A blank English pipeline with a sentencizer (no model download)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


@functools.cache
def shared_nlp():
    """One `make_nlp()` per process, for the mining pass and the labeler alike: building it costs about 0.1 s
    of CPU (spaCy's tokenizer exceptions), paid once per compile per pass otherwise. Sharing it changes no
    result: the sentencizer and the tokenizer are rule-based, and a PhraseMatcher built on its vocabulary
    belongs to its own labeler."""
    return make_nlp()


def segments(text: str) -> list[tuple[int, int]]:
    """(start, end) of the non-blank pieces of `text` between newlines and `<image>` tags, trimmed."""
    # str.split instead of a regex scan: this runs on every turn of both passes, and most turns hold no tag.
    out = []
    pos = 0
    tag = len(IMAGE_PLACEHOLDER)
    for line in text.split("\n"):
        for piece in line.split(IMAGE_PLACEHOLDER) if IMAGE_PLACEHOLDER in line else (line,):
            stripped = piece.strip()
            if stripped:
                start = pos + len(piece) - len(piece.lstrip())
                out.append((start, start + len(stripped)))
            pos += len(piece) + tag
        pos += 1 - tag  # the last piece of a line is followed by the newline, not by a tag
    return out


def segment_texts(text: str) -> list[str]:
    """The texts of `segments(text)`, in order, for callers that need no offsets (the mining pass): the pieces
    between newlines and tags are the same whichever of the two is cut first, and a tag holds no newline."""
    return [s for piece in text.replace(IMAGE_PLACEHOLDER, "\n").split("\n") if (s := piece.strip())]


@functools.cache
def _punctuation() -> tuple[re.Pattern[str], str, tuple[str, ...], str]:
    """spaCy's sentence-final characters as (a pattern matching one, the trailing run to strip, and the same two
    for ASCII text: its ASCII members, their trailing run). Built on first use, not at import: importing spaCy
    costs seconds, and the argument parser imports this module."""
    from spacy.pipeline import Sentencizer

    punct = "".join(sorted(Sentencizer.default_punct_chars))
    ascii_punct = "".join(c for c in punct if c.isascii())
    return re.compile(f"[{re.escape(punct)}]"), punct, tuple(ascii_punct), ascii_punct


@functools.cache
def _option_letters() -> frozenset[str]:
    """The ASCII letters X for which the shared pipeline's tokenizer keeps the chunk "X." as one token."""
    tokenizer = shared_nlp().tokenizer
    return frozenset(c for c in string.ascii_letters if [t.text for t in tokenizer(f"{c}. x")] == [f"{c}.", "x"])


def _unsplittable(segment: str) -> bool:
    """True when spaCy's sentencizer would return `segment` (already trimmed) as one sentence.

    The sentencizer starts a sentence at a token that is not punctuation (`is_punct`: every character of
    Unicode category P) after a token that is one of its punctuation characters. All of those are of category
    P, so when every one of them in the segment sits in its trailing run of them, every token after such a
    token is made of that run and is punctuation: no split. Whitespace ends the run: two spaces, or one tab,
    make a whitespace token, which is not punctuation ("Hi!  !" is two sentences).

    An option line ("A. big red circle") is tested without its "A. ": spaCy splits text into chunks at spaces
    first, and keeps the chunk "A." whole (a tokenizer special case, checked in _option_letters), a token that is
    not one of the punctuation characters; so only the rest can split. Most segments that spaCy used to see in
    the mining pass were such lines."""
    if segment[1:3] == ". " and segment[0] in _option_letters():
        segment = segment[3:]
    punct_re, trailing, ascii_punct, ascii_trailing = _punctuation()
    if segment.isascii():
        # Most segments are ASCII: only '!', '.' and '?' of the ~100 characters can occur, and `in` finds each
        # several times faster than the pattern's scan (this check runs on every segment of the mining pass).
        body = segment.rstrip(ascii_trailing)
        if not _holds_any(body, ascii_punct):
            return True
        return "." in body and not _holds_any(_DECIMAL_POINT_RE.sub("", body), ascii_punct)
    body = segment.rstrip(trailing)
    return punct_re.search(body) is None or punct_re.search(_DECIMAL_POINT_RE.sub("", body)) is None


def _holds_any(text: str, chars: tuple[str, ...]) -> bool:
    # A loop, not any() over a generator: for the three ASCII characters that is 7x faster, on every segment.
    for c in chars:
        if c in text:
            return True
    return False


# A '.' between two ASCII digits ("[0.12, 0.34]", "3.5 apples") is inside a number token: no prefix, suffix or
# infix rule of the English tokenizer cuts a number at its decimal point (the only infixes with a '.' need a
# letter or quote before it, or a second '.'), so it never is the one-character token that ends a sentence.
# Box and region templates hold four such points and otherwise no punctuation before their end.
_DECIMAL_POINT_RE = re.compile(r"(?<=[0-9])\.(?=[0-9])")


def _doc_sentences(doc, matcher) -> tuple[Sentence, ...]:
    """Sentences of one segment doc (offsets relative to the segment), with lexicon hits attached."""
    sents = list(doc.sents)
    starts = [s.start_char for s in sents]
    ends = [s.end_char for s in sents]
    for i, sent in enumerate(sents[:-1]):
        # The sentencizer keeps punctuation that follows '?' with the sentence before it, so "Where? [0.1, 0.2]"
        # would end the first sentence with '['; an opening bracket or quote belongs to the next sentence.
        if len(sent) > 1 and sent[-1].text in _OPENING:
            prev = sent[-2]
            ends[i] = prev.idx + len(prev.text)
            starts[i + 1] = sent[-1].idx
    hits: dict[int, str] = {}
    if matcher is not None:
        for match_id, tok_start, tok_end in matcher(doc):
            c0, c1 = doc[tok_start].idx, doc[tok_end - 1].idx + len(doc[tok_end - 1].text)
            for i, (s0, s1) in enumerate(zip(starts, ends)):
                if s0 < c1 and c0 < s1:
                    hits.setdefault(i, doc.vocab.strings[match_id])
    return tuple(Sentence(start=s0, end=s1, lexicon_hit=hits.get(i)) for i, (s0, s1) in enumerate(zip(starts, ends)))


class SentenceSplitter:
    """Splits many texts at once (spaCy `nlp.pipe` over the segments not yet cached).

    `matcher`, when given, is a spaCy PhraseMatcher run on every segment; its hits are attached to the
    sentences they fall in. The matcher must not change while the splitter is in use (the cache holds hits).
    """

    def __init__(self, nlp=None, matcher=None, *, cache_size: int = 20_000, batch_size: int = 1000) -> None:
        self.nlp = nlp if nlp is not None else shared_nlp()
        self.matcher = matcher
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: dict[str, tuple[Sentence, ...]] = {}

    def split(self, texts: Sequence[str]) -> list[list[Sentence]]:
        """Sentences of every text, with offsets into that text, in order."""
        segs = [segments(t) for t in texts]
        needed = dict.fromkeys(t[a:b] for t, ss in zip(texts, segs) for a, b in ss)
        # Take the cached entries before _process, which may clear the cache when it is full.
        known = {seg: self._cache[seg] for seg in needed if seg in self._cache}
        fresh = self._process([seg for seg in needed if seg not in known])
        fresh.update(known)
        out: list[list[Sentence]] = []
        for text, ss in zip(texts, segs):
            sents: list[Sentence] = []
            for a, b in ss:
                for s in fresh[text[a:b]]:
                    sents.append(Sentence(start=a + s.start, end=a + s.end, lexicon_hit=s.lexicon_hit))
            out.append(sents)
        return out

    def split_segments(self, segs: Sequence[str], match: Sequence[bool]) -> list[tuple[Sentence, ...]]:
        """Sentences of distinct trimmed segments (offsets into each), uncached: the labeler caches what it
        makes of them. The lexicon matcher runs on `segs[i]` only where `match[i]`; the others are promised to
        hold no phrase, so one that spaCy cannot split (`_unsplittable`) skips spaCy."""
        out: list[tuple[Sentence, ...] | None] = [None] * len(segs)
        todo: list[int] = []
        for i, (seg, m) in enumerate(zip(segs, match)):
            if not m and _unsplittable(seg):
                out[i] = (Sentence(start=0, end=len(seg)),)
            else:
                todo.append(i)
        docs = self.nlp.pipe([segs[i] for i in todo], batch_size=self.batch_size)
        for i, doc in zip(todo, docs):
            out[i] = _doc_sentences(doc, self.matcher if match[i] else None)
        return out  # type: ignore[return-value]

    def segment_offsets(self, segs: Sequence[str]) -> list[tuple[tuple[int, int], ...] | None]:
        """For each distinct trimmed segment: its sentences' (start, end) relative to it, or None when it is one
        sentence; exactly `split`'s offsets. The mining pass needs nothing else, and building a Sentence per
        sentence was a third of its time."""
        if self.matcher is not None:
            raise ValueError("SentenceSplitter.segment_offsets() gives no lexicon hits; use split() with a matcher")
        out: list[tuple[tuple[int, int], ...] | None] = []
        todo: list[str] = []
        for seg in segs:
            cached = self._cache.get(seg)
            if cached is not None:
                out.append(tuple((s.start, s.end) for s in cached))
            elif _unsplittable(seg):
                out.append(None)
            else:
                out.append(())  # filled below
                todo.append(seg)
        if todo:
            done = self._process(todo)
            out = [
                tuple((s.start, s.end) for s in done[seg]) if rel == () else rel for seg, rel in zip(segs, out)
            ]
        return out

    def _process(self, todo: list[str]) -> dict[str, tuple[Sentence, ...]]:
        quick: dict[str, tuple[Sentence, ...]] = {}
        if self.matcher is None:
            # Most segments (one question, one instruction) hold no sentence punctuation before their end, so
            # the sentencizer cannot split them: skip spaCy for those, it is most of the mining pass's time.
            # They are not cached either: recomputing is as cheap as a lookup, and caching every distinct
            # question was most of the compile's memory growth.
            quick = {seg: (Sentence(start=0, end=len(seg)),) for seg in todo if _unsplittable(seg)}
            todo = [seg for seg in todo if seg not in quick]
        fresh = {
            seg: _doc_sentences(doc, self.matcher)
            for seg, doc in zip(todo, self.nlp.pipe(todo, batch_size=self.batch_size))
        }
        if len(self._cache) + len(fresh) > self.cache_size:
            # Clearing is cheaper and simpler than LRU bookkeeping; frequent segments come back at once.
            self._cache.clear()
        if len(fresh) <= self.cache_size:
            self._cache.update(fresh)
        fresh.update(quick)
        return fresh
