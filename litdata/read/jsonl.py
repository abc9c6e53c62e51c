"""JSON Lines: one record per line, decoded strictly as UTF-8, one line in memory at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from litdata.records import RecordProblem, RejectReason

_BOM = b"\xef\xbb\xbf"
_JSON_SPACE = b" \t\r\n"


def iter_jsonl(f: BinaryIO, *, max_record_bytes: int, first_index: int = 0) -> Iterator[tuple[int, Any]]:
    """(index, parsed value or RecordProblem) per non-blank line; index = line number - 1.

    `first_index` is the index of the first line `f` gives: a reader of one byte range of a file (the Ray
    engine's partitions) starts at that range's first line, and indices and messages stay those of the file.
    """
    lineno = first_index
    while True:
        line = f.readline(max_record_bytes + 1)
        if not line:
            return
        index, lineno = lineno, lineno + 1
        if index == 0 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if len(line) > max_record_bytes and not line.endswith(b"\n"):
            size = len(line) + _skip_rest_of_line(f)
            yield (
                index,
                RecordProblem(
                    RejectReason.RECORD_TOO_LARGE,
                    f"line {lineno} has {size} bytes, more than max_record_bytes={max_record_bytes}",
                ),
            )
            continue
        if not line.strip(_JSON_SPACE):
            continue
        yield index, parse_line(line, lineno)


def parse_line(line: bytes, lineno: int) -> Any:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return RecordProblem(
            RejectReason.INVALID_UTF8,
            f"line {lineno} is not valid UTF-8: byte {e.start} of the line is {line[e.start : e.start + 1]!r} "
            f"({e.reason})",
        )
    return parse_json(text, f"line {lineno}")


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        return RecordProblem(RejectReason.INVALID_JSON, f"{where} is nested too deeply to parse")
    except ValueError as e:  # JSONDecodeError, and ints longer than Python's digit limit
        return RecordProblem(RejectReason.INVALID_JSON, f"{where} is not valid JSON: {e}")


def _skip_rest_of_line(f: BinaryIO) -> int:
    skipped = 0
    while True:
        piece = f.readline(1 << 20)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped
