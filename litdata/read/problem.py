"""Wording for the parsers' RecordProblems (litdata.records.RecordProblem, the one error shape of a bad record)."""

from __future__ import annotations

from typing import Any


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
