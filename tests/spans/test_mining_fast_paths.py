"""The mining pass's shortcuts give exactly what the slower forms they replace gave: whitespace collapsing by
str.split, skipping the number patterns on digit-free text, the ASCII test for unsplittable segments (decimal
points included), segment texts without offsets, and sentence offsets without Sentence objects.
templates.parquet's bytes depend on all of them."""

from __future__ import annotations

import random
import re
import sys

import pytest

from litdata.read import read_sources
from litdata.records import Conversation
from litdata.records.conversation import IMAGE_PLACEHOLDER, Role
from litdata.spans import sentences
from litdata.spans.sentences import SentenceSplitter
from litdata.spans.shapes import _BOX_RE, _NUM_RE, BOX, NUM, sentence_shape
from tests.helpers.output_digests import DEMO_DATA

TRICKY = [
    "Answer with the option's letter from the given choices directly.",
    "  What is at [0.12, 0.34, 0.56, 0.78]?  ",
    "Region (12, 40) and\u00a0non-breaking\u2003spaces\x1cand\x1fseparators",
    "Arabic-Indic digits \u0663\u0664 and full-width \uff11\uff12 count as numbers",
    "<image>\nDescribe it. Then count: 3 cats.",
    "Hello.World e.g. this? No! Yes... (really) \"quoted.\" 'x'",
    "中文句子。第二句！第三句？",
    "Wait\u2026 what\uff01 ok\uff0e fine",
    "A. cat\nB. dog\nC. bird",
    "Where? [0.1, 0.2]",
    "-1.5e3 +2 x1 <num> 4,000,000.25",
    "",
    "   ",
    "\t\n\r\x0b\x0c",
]


def _demo_user_texts() -> list[str]:
    items = read_sources([str(DEMO_DATA / "llava_demo.json"), str(DEMO_DATA / "extra.jsonl")])
    return [t.text for c in items if isinstance(c, Conversation) for t in c.turns if t.role is Role.USER]


def test_str_split_and_the_whitespace_pattern_agree_on_every_code_point():
    space = re.compile(r"\s")
    differ = [cp for cp in range(sys.maxunicode + 1) if (space.fullmatch(chr(cp)) is not None) != chr(cp).isspace()]
    assert differ == []


def test_every_whitespace_character_but_the_space_is_unprintable():
    """sentence_shape returns a printable text with single inner spaces as it is: no other whitespace in it."""
    differ = [cp for cp in range(sys.maxunicode + 1) if chr(cp).isspace() and chr(cp).isprintable() and cp != 32]
    assert differ == []


def _reference_shape(text: str) -> str:
    """sentence_shape as it was written before the shortcuts."""
    s = text.replace(IMAGE_PLACEHOLDER, " ").lower()
    s = _BOX_RE.sub(BOX, s)
    s = _NUM_RE.sub(NUM, s)
    return re.sub(r"\s+", " ", s).strip()


def test_sentence_shape_is_unchanged_on_tricky_and_demo_text():
    rng = random.Random(0)
    alphabet = "ab .,:;!?()[]-+0123456789\u0663\u00a0\t\n<>image\x00Σ"
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for text in [*TRICKY, *_demo_user_texts(), *fuzz]:
        assert sentence_shape(text) == _reference_shape(text), text


def _unsplittable_by_pattern(segment: str) -> bool:
    if segment[1:3] == ". " and segment[0] in sentences._option_letters():  # an option line: its rest decides
        segment = segment[3:]
    punct_re, trailing, _, _ = sentences._punctuation()
    return punct_re.search(re.sub(r"(?<=[0-9])\.(?=[0-9])", "", segment.rstrip(trailing))) is None


def test_ascii_test_for_unsplittable_segments_agrees_with_the_pattern():
    rng = random.Random(1)
    alphabet = "ab .!?,;:'\"\t\r\n0"
    cases = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    cases += ["Why?", "Why? Because.", "e.g. this", "end...", "end!?!", "3.5 apples", "no punctuation", "0.5.", "1..2"]
    assert any(sentences._unsplittable(c) for c in cases) and not all(sentences._unsplittable(c) for c in cases)
    for segment in cases:
        assert sentences._unsplittable(segment) == _unsplittable_by_pattern(segment), segment


def _segment_offsets_by_split(segs: list[str]) -> list[tuple[tuple[int, int], ...] | None]:
    got = [tuple((s.start, s.end) for s in sents) for sents in SentenceSplitter().split(segs)]
    return [None if pairs == ((0, len(seg)),) else pairs for seg, pairs in zip(segs, got)]


def test_segment_offsets_are_the_offsets_of_split_cold_and_warm():
    texts = [*TRICKY, *_demo_user_texts()]
    segs = list(dict.fromkeys(t[a:b] for t in texts for a, b in sentences.segments(t)))
    expected = _segment_offsets_by_split(segs)
    assert sum(rel is not None for rel in expected) > 10  # some segments do hold several sentences
    one_each = [((0, len(seg)),) if rel is None else rel for seg, rel in zip(segs, expected)]
    assert [
        ((0, len(seg)),) if rel is None else rel for seg, rel in zip(segs, SentenceSplitter().segment_offsets(segs))
    ] == one_each
    warm = SentenceSplitter()
    warm.split(segs[::2])  # half the segments cached as Sentence tuples
    for _ in range(2):
        got = warm.segment_offsets(segs)
        assert [((0, len(seg)),) if rel is None else rel for seg, rel in zip(segs, got)] == one_each
    tiny = SentenceSplitter(cache_size=1)  # the cache cleared while segment_offsets() runs
    got = [tiny.segment_offsets([seg])[0] for seg in segs]
    assert [((0, len(seg)),) if rel is None else rel for seg, rel in zip(segs, got)] == one_each


def test_segment_offsets_refuses_a_splitter_with_a_matcher():
    with pytest.raises(ValueError, match="lexicon"):
        SentenceSplitter(matcher=object()).segment_offsets(["a."])


def test_segment_texts_are_the_texts_of_segments():
    rng = random.Random(3)
    pieces = ["a", " ", "\n", "\t", "\u3000", IMAGE_PLACEHOLDER, "<image", ">", "b.", "\r\n"]
    fuzz = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) for _ in range(3000)]
    for text in [*TRICKY, *_demo_user_texts(), *fuzz]:
        assert sentences.segment_texts(text) == [text[a:b] for a, b in sentences.segments(text)], repr(text)
    turns = _demo_user_texts()[:40]
    assert sentences.segment_texts("\n".join(turns)) == [s for t in turns for s in sentences.segment_texts(t)]


def test_a_segment_whose_only_inner_points_are_decimal_points_is_one_sentence_for_spacy():
    """Fuzz against spaCy's sentencizer: numbers with decimal points next to letters, units, brackets, quotes,
    other sentence punctuation and the tokenizer's own special cases ("a.m.", "°C.")."""
    nlp = sentences.make_nlp()
    rng = random.Random(4)
    pieces = ["0", "12", ".", "3.5", "0.25", "1.2.3", "a", "x", "Yes", "B", "km", "°C", "a.m.", "e.g.", "U.S.", ",",
              "[", "]", "(", ")", '"', "'", "!", "?", ":", "-", " ", " ", "  ", "\u00a0", "\u3002", "\u0663"]
    cases = {"".join(rng.choice(pieces) for _ in range(rng.randint(1, 9))).strip() for _ in range(30000)}
    cases = sorted(c for c in cases if c)
    decimal = 0
    for seg, doc in zip(cases, nlp.pipe(cases, batch_size=1000)):
        if sentences._unsplittable(seg):
            body = seg.rstrip(".!?\u3002")
            decimal += bool(re.search(r"[0-9]\.[0-9]", body))
            assert [(s.start_char, s.end_char) for s in doc.sents] == [(0, len(seg))], repr(seg)
    assert decimal > 500
    region = "Please provide a short description for this region: [0.33, 0.00, 0.62, 0.30]"
    assert sentences._unsplittable(region) and not sentences._unsplittable("It is 3.5. Yes")


def test_a_segment_called_unsplittable_is_one_sentence_for_spacy():
    """Fuzz against spaCy's sentencizer itself: sentence punctuation, brackets, quotes, every kind of space
    (two spaces or a tab inside the trailing punctuation make a token that starts a sentence: "Hi!  !")."""
    nlp = sentences.make_nlp()
    rng = random.Random(2)
    pieces = ["a", "Hi", "3", "3.5", "e.g.", ".", "!", "?", "?!", "...", "。", "！", "\u2026", "(", ")", "[", '"',
              "'", ",", ":", " ", " ", "  ", "\t", "\u00a0", "\u3000", "\x1c"]
    starts = ["", "", "A. ", "b. ", "Z.  ", "A.", "A.\t", "A.. ", "é. ", "1. "]  # option lines, and near misses
    cases = {
        (rng.choice(starts) + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 7)))).strip()
        for _ in range(20000)
    }
    cases = sorted(c for c in cases if c)
    claimed = options = 0
    for seg, doc in zip(cases, nlp.pipe(cases, batch_size=1000)):
        if sentences._unsplittable(seg):
            claimed += 1
            options += seg[1:3] == ". " and any(c in seg[3:] for c in ".!?")  # only the option rule allows it
            assert [(s.start_char, s.end_char) for s in doc.sents] == [(0, len(seg))], repr(seg)
    assert claimed > len(cases) // 10 and options > 100
    assert not sentences._unsplittable("Hello!  !") and sentences._unsplittable("What?!")
    assert sentences._unsplittable("B. big blue diamond") and not sentences._unsplittable("B. big. Blue")
