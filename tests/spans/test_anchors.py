"""Anchors: the cheap test that lets the labeller skip a turn or a segment must never skip one that holds a
template sentence or a lexicon phrase."""

from __future__ import annotations

import random
import sys

from litdata.spans.anchors import WHITESPACE, Anchors, fold, template_anchor


def test_folding_is_per_character_even_around_capital_sigma():
    """A segment's fold must be a substring of its turn's, and a token's of its text's: str.lower lowers 'Σ' by
    its neighbours ('ς' at a word's end), which folding undoes."""
    rng = random.Random(0)
    alphabet = "ΣσςΑαb'.:-\x00 \t\n\u00adİK"
    for _ in range(5000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        assert fold(a + b) == fold(a) + fold(b), (a, b)
    assert fold("ΟΔΟΣ") == fold("οδοσ") == "οδοσ" and fold("A b\u3000C\x1c") == "abc"


def test_the_whitespace_folding_deletes_is_what_str_split_splits_on():
    assert sorted(WHITESPACE) == [chr(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isspace()]


def test_template_anchor_is_the_longest_literal_piece():
    assert template_anchor("please provide a short description for this region: <box>.") == (
        "pleaseprovideashortdescriptionforthisregion:"
    )
    assert template_anchor("<num> <box>") is None
    assert Anchors.build(["<num>.", "answer it."], []).templates == (".", "answerit.")
    assert Anchors.build(["<num> <box>", "answer it."], ["Make  Napalm"]) == Anchors(templates=None,
                                                                                      phrases=("makenapalm",))


def test_texts_with_any_finds_exactly_the_texts_holding_an_anchor():
    rng = random.Random(1)
    anchors = Anchors.build(["ab <num> cd.", "x y: <arg>"], ["b a", "\x01q"])
    words = ["a", "b", "ab", "cd.", "CD.", "x", "y:", "Y :", "q", "\x01", "\x00", "\n", "  ", "Σ"]
    for n in range(300):
        texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 6))]
        if n % 3 == 0:
            texts = [t.replace("\x00", "") for t in texts]  # the joined search, not the one-by-one fallback
        hit, present = anchors.texts_with_any(texts)
        assert hit == {t for t in texts if any(a in fold(t) for a in anchors.all())}, texts
        assert set(present) == {a for a in anchors.all() if any(a in fold(t) for t in texts)}, texts
