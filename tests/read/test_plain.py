"""The one-pass check of a ShareGPT conversation (read/plain.py) gives exactly what the step-by-step checks give:
the same Conversation for every record it accepts, and it accepts every ShareGPT record they accept."""

from __future__ import annotations

import itertools
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litdata.read import ReadLimits, normalize_record
from litdata.read import normalize as normalize_module
from litdata.read.plain import plain_conversation
from litdata.read.text import text_problem
from litdata.records import Conversation

LIMITS = ReadLimits(max_turns=8, max_turn_chars=30, max_images=2)
SPELLINGS = ["human", "gpt", "system", "user", "assistant", "developer", "model", " Human ", "GPT", "SYSTEM\n",
             "robot", "", "hu man"]
TEXTS = ["Hi.", "", " ", "\t\n", "<image>", "<image>\nWhat is it?", "<image> and <image>", "a\x00b", "tab\tok",
         "bell\x07", "\x1f", "del\x7f ok", "nbsp\u00a0ok", "lone \ud800", "low \udfff", "é 🙂 中文", "x" * 30, "y" * 31,
         "\u2028", "\r\n", "\x0b", "\x0c", "\x85"]

text = st.sampled_from(TEXTS) | st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
json_like = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2) | st.dictionaries(
    st.sampled_from(["from", "value"]), st.integers(), max_size=2
)
turn = st.fixed_dictionaries(
    {}, optional={"from": st.sampled_from(SPELLINGS) | json_like, "value": text | json_like, "extra": json_like}
) | json_like
# Well-formed turns in any order of roles, for the role-order check.
clean_turn = st.fixed_dictionaries({"from": st.sampled_from(SPELLINGS), "value": st.sampled_from(["Fine.", "Why?"])})
# Mostly well-formed conversations (so that the accepting side is exercised), some with one thing wrong.
good_turns = st.integers(0, 3).flatmap(
    lambda pairs: st.tuples(st.booleans(), st.lists(text, min_size=2 * pairs + 1, max_size=2 * pairs + 1))
).map(lambda t: ([{"from": "system", "value": t[1][0]}] if t[0] else [])
      + [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(t[1][1:])])
images = st.none() | st.sampled_from(["a.jpg", ["a.jpg"], ["a.jpg", "b.jpg"], ["a.jpg", "b.jpg", "c.jpg"], [], 7])
record = st.builds(
    lambda turns, extra, image: {"id": "r", "conversations": turns + extra, **({} if image is None else
                                                                               {"image": image})},
    st.one_of(good_turns, st.lists(turn, max_size=5), st.lists(clean_turn, max_size=7)),
    st.lists(turn | clean_turn, max_size=1), images,
)


def step_by_step(record, monkeypatch: pytest.MonkeyPatch):
    with monkeypatch.context() as m:
        m.setattr(normalize_module, "plain_conversation", lambda raw, max_turn_chars: None)
        return normalize_record(record, source="s.json", index=3, limits=LIMITS)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=record)
def test_records_read_as_the_step_by_step_checks_read_them(record, monkeypatch):
    expected = step_by_step(record, monkeypatch)
    assert normalize_record(record, source="s.json", index=3, limits=LIMITS) == expected
    if isinstance(expected, Conversation):  # the fast path is not silently skipped for good records
        assert plain_conversation(record["conversations"], LIMITS.max_turn_chars) is not None


@pytest.mark.parametrize("value", TEXTS)
@pytest.mark.parametrize("where", [0, 1, 3])
def test_each_tricky_text_in_each_position(value, where, monkeypatch):
    turns = [{"from": ("human", "gpt")[i % 2], "value": f"turn {i}"} for i in range(4)]
    turns[where]["value"] = value
    for image in (None, "a.jpg", ["a.jpg", "b.jpg"]):
        record = {"conversations": turns} if image is None else {"conversations": turns, "image": image}
        assert normalize_record(record, source="s.json", index=3, limits=LIMITS) == step_by_step(record, monkeypatch)


def test_every_order_of_up_to_six_roles(monkeypatch):
    for n in range(1, 7):
        for said in itertools.product(["system", "human", "gpt", " Human "], repeat=n):
            record = {"conversations": [{"from": s, "value": "Hi."} for s in said]}
            expected = step_by_step(record, monkeypatch)
            assert normalize_record(record, source="s.json", index=3, limits=LIMITS) == expected, said
            assert (plain_conversation(record["conversations"], 30) is not None) == isinstance(expected, Conversation)


def test_the_control_character_test_agrees_with_text_problem_on_every_code_point():
    # A block of 4096 code points that text_problem finds clean must be accepted whole; the code points of the
    # others (the C0 controls, the surrogates) are tried one by one.
    def accepted(chars: str) -> bool:
        turns = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a" + chars}]
        return plain_conversation(turns, sys.maxunicode) is not None

    tried_one_by_one = 0
    for block in range(0, sys.maxunicode + 1, 4096):
        chars = "".join(map(chr, range(block, min(block + 4096, sys.maxunicode + 1))))
        if text_problem(chars) is None:
            assert accepted(chars), hex(block)
            continue
        for cp in range(block, block + len(chars)):
            tried_one_by_one += 1
            assert accepted(chr(cp)) == (text_problem(chr(cp)) is None), hex(cp)
    assert tried_one_by_one == 2 * 4096  # U+0000-0FFF and U+D000-DFFF
