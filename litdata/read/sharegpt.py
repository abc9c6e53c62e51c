"""LLaVA / ShareGPT turns: `conversations: [{"from": "human", "value": "..."}, ...]`."""

from __future__ import annotations

from litdata.read.problem import RecordError, json_type
from litdata.read.turns import RawTurn, parse_role
from litdata.records import RejectReason


def parse_conversations(raw: list) -> list[RawTurn]:
    turns = []
    for i, item in enumerate(raw):
        where = f"conversations[{i}]"
        if not isinstance(item, dict):
            raise RecordError(
                RejectReason.BAD_FIELD_TYPE,
                f"{where} must be an object with 'from' and 'value', got {json_type(item)}",
            )
        said = item.get("from")
        if not isinstance(said, str):
            found = "is missing" if "from" not in item else f"is {json_type(said)}"
            raise RecordError(RejectReason.BAD_FIELD_TYPE, f"{where}.from must be a string but {found}")
        role = parse_role(said, where)
        value = item.get("value")
        if not isinstance(value, str):
            found = "is missing" if "value" not in item else f"is {json_type(value)}"
            raise RecordError(RejectReason.BAD_FIELD_TYPE, f"{where}.value must be a string but {found}")
        turns.append(RawTurn(role=role, text=value, where=where, text_field=f"{where}.value", said=said))
    return turns
