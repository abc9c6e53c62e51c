"""LLaVA / ShareGPT turns: `conversations: [{"from": "human", "value": "..."}, ...]`."""

from __future__ import annotations

from litdata.read.problem import json_type
from litdata.read.turns import ROLES, RawTurn, unknown_role
from litdata.records import RecordProblem, RejectReason


def parse_conversations(raw: list) -> list[RawTurn]:
    turns = []
    for i, item in enumerate(raw):
        # The common case is checked in one line; the message is worked out only for a bad turn.
        said = item.get("from") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        role = ROLES.get(said.strip().lower()) if isinstance(said, str) else None
        if role is None or not isinstance(value, str):
            raise _bad_turn(item, f"conversations[{i}]")
        turns.append(RawTurn(role=role, text=value, field="conversations", index=i, said=said))
    return turns


def _bad_turn(item: object, where: str) -> RecordProblem:
    if not isinstance(item, dict):
        return RecordProblem(
            RejectReason.BAD_FIELD_TYPE, f"{where} must be an object with 'from' and 'value', got {json_type(item)}"
        )
    for key in ("from", "value"):
        value = item.get(key)
        if not isinstance(value, str):
            found = "is missing" if key not in item else f"is {json_type(value)}"
            return RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where}.{key} must be a string but {found}")
    return unknown_role(item["from"], where)
