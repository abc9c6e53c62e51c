"""make_turns fills Turn's slots without its generated __init__; the Turns it makes are the constructor's."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from litdata.records import Role, Turn
from litdata.records.conversation import make_turns


def test_turn_is_still_just_role_and_text():
    # make_turns sets exactly these slots and runs no __post_init__: a new field or check would be skipped.
    assert [(f.name, f.default, f.default_factory) for f in dataclasses.fields(Turn)] == [
        ("role", dataclasses.MISSING, dataclasses.MISSING),
        ("text", dataclasses.MISSING, dataclasses.MISSING),
    ]
    assert not hasattr(Turn, "__post_init__")
    assert Turn.__slots__ == ("role", "text")


def test_made_turns_equal_constructed_turns_in_every_way():
    roles = [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    texts = ["be brief", "<image>\nWhat?", "A cat.", "", "é 🙂"]
    made = make_turns(roles, texts)
    built = tuple(Turn(role=r, text=t) for r, t in zip(roles, texts))
    assert type(made) is tuple and made == built
    assert [type(t) for t in made] == [Turn] * 5
    assert list(map(repr, made)) == list(map(repr, built)) and list(map(hash, made)) == list(map(hash, built))
    assert pickle.loads(pickle.dumps(made)) == built
    assert make_turns([], []) == ()


def test_made_turns_are_frozen():
    (turn,) = make_turns([Role.USER], ["hi"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        turn.text = "changed"  # type: ignore[misc]
