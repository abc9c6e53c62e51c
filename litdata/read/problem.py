"""The one exception type the record parsers raise; the stream turns it into a Reject."""

from __future__ import annotations

from typing import Any

from litdata.records import RejectReason


class RecordError(Exception):
    """Why one record cannot become a Conversation. Low-level readers also yield instances (not raised) for
    records they could not even parse, so every record yields exactly one item."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages such as 'expected a string, got null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return type(value).__name__
