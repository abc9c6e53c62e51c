"""Records and ways to break a JSON array, shared by the array reader tests."""

from __future__ import annotations

import json


def rec(i: int, answer: str | None = None) -> dict:
    return {"id": f"r{i}", "image": "a.jpg", "conversations": [
        {"from": "human", "value": f"<image>\nWhat is {i}?"}, {"from": "gpt", "value": answer or f"It is {i}."}]}


LAYOUTS = {
    "json.dumps": lambda recs: json.dumps(recs),
    "compact": lambda recs: json.dumps(recs, separators=(",", ":")),
    "indented": lambda recs: json.dumps(recs, indent=1),
    "one per line": lambda recs: "[\n" + ",\n".join(json.dumps(r) for r in recs) + "\n]",
}


def drop_char(text: str, anchor: str, char: str) -> str:
    """`text` without the first `char` after `anchor`."""
    j = text.index(char, text.index(anchor) + 1)
    return text[:j] + text[j + 1 :]


def stray_brace(text: str) -> str:
    j = text.index("}", text.index("It is 10."))
    return text[:j] + "}" + text[j:]


def missing_record_brace(text: str) -> str:
    j = text.rindex("}", 0, text.index('"r11"'))
    return text[:j] + text[j + 1 :]


BREAKS = {
    "the record's closing brace is missing": missing_record_brace,
    "a turn's closing brace is missing": lambda t: drop_char(t, "It is 10.", "}"),
    "the turns' closing bracket is missing": lambda t: drop_char(t, "It is 10.", "]"),
    "the answer's closing quote is missing": lambda t: drop_char(t, "It is 10.", '"'),
    "the question's closing quote is missing": lambda t: drop_char(t, "What is 10?", '"'),
    "the id's closing quote is missing": lambda t: drop_char(t, '"r10', '"'),
    "a stray closing brace": stray_brace,
}
