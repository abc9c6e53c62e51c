"""A JSON array of records, streamed element by element with bounded memory.

The file is decoded in chunks (undecodable bytes are kept as surrogate escapes, so the element holding them
can be rejected as invalid_utf8 instead of failing the file) and each element is parsed with
`json.JSONDecoder.raw_decode` at C speed. When an element is malformed, a scan aware of strings, nesting and
the JSON grammar (see scanner.py) finds where it ends, also when a '}' is missing or a string is unterminated,
and reading goes on from the next element. An element over max_record_bytes is skipped chunk by chunk and
rejected as record_too_large. Only when the file ends inside an element does reading stop: one final item
then stands for the unread rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from litdata.read.jsonarray.scanner import Scanner
from litdata.read.jsonarray.text import Text
from litdata.records import RecordProblem, RejectReason

CHUNK_BYTES = 1 << 20
COMPACT_CHARS = 1 << 16
_DECODER = json.JSONDecoder()


class _Stop(RecordProblem):
    """The last item of a file whose reading stopped early; it stands for everything not read."""


def iter_json_array(f: BinaryIO, *, max_record_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """(index, parsed element or RecordProblem) for every element of the array that starts the file."""
    yield from elements(*opened(f, chunk_bytes), max_record_bytes)


def opened(f: BinaryIO, chunk_bytes: int) -> tuple[Text, int, str]:
    """The reader at the array's first element: (buffer, index 0, the element's first character)."""
    buf = Text(f, chunk_bytes)
    buf.more()
    if buf.text.startswith("\ufeff"):
        buf.pos = 1
    if buf.skip_space() != "[":
        raise ValueError("the file does not start with '['")
    buf.pos += 1
    return buf, 0, buf.skip_space()


def elements(buf: Text, index: int, ch: str, max_record_bytes: int, *, stop: int | None = None,
              at_element: Callable[[Text, int], None] | None = None) -> Iterator[tuple[int, Any]]:
    """The elements from the one that starts at buf.pos (its first character is `ch`), numbered from `index`.
    Reading ends before element `stop` when given (a partition, see JsonArrayCut); `at_element` sees the reader
    at the start of every element (the offset index)."""
    while ch != "]":
        if index == stop:
            return
        if at_element is not None:
            at_element(buf, index)
        if ch == "":
            yield index, _stop(buf, index, "the file ends where an element was expected (truncated file?)")
            return
        if buf.pos > COMPACT_CHARS:
            # A decoding error costs json the text before it (it counts lines), so a run of many small
            # broken elements would be quadratic in the chunk size without this.
            buf.drop_consumed()
        item = _element(buf, index, max_record_bytes)
        while True:  # the element, then each malformed one up to the ',' or ']' (or the next start) after it
            yield index, item
            index += 1
            if isinstance(item, _Stop):
                return
            ch = buf.skip_space()
            if buf.next_starts or ch in (",", "]"):
                break
            if ch == "":
                yield index, _stop(buf, index, "the array is not closed: the file ends without ']' (truncated?)")
                return
            item = _garbage(buf, index, max_record_bytes)
        if buf.next_starts:
            buf.next_starts = False
            continue  # ch is the first character of the next element
        if ch == ",":
            buf.pos += 1
            ch = buf.skip_space()  # a ']' right after a trailing comma hides no record: accepted
    buf.pos += 1
    if buf.skip_space() != "":
        yield index, _stop(buf, index, "unexpected data after the closing ']'")


def _element(buf: Text, index: int, max_record_bytes: int) -> Any:
    """Parse the element at buf.pos and move past it: to the ',' or ']' after it, or, when a malformed element
    had to be cut where the next one starts, to that start (buf.next_starts is then set)."""
    scanner: Scanner | None = None  # built at the first parse failure: most elements never need it
    scanned = 0  # how far the scanner got, counted from the element's start
    while True:
        start = buf.pos
        try:
            value, end = _DECODER.raw_decode(buf.text, start)
        except (ValueError, RecursionError) as e:
            if scanner is None:
                scanner = Scanner()
            kind, end = scanner.run(buf.text, start + scanned)
            if kind == "more":  # incomplete in this buffer (or malformed beyond it): read on, within the limit
                scanned = end - start
                if len(buf.text) - start > max_record_bytes:
                    return _skip_large(buf, scanner, end, index, max_record_bytes)
                if not buf.more():
                    return _stop(buf, index, f"element {index} is not valid JSON ({_why(e)}) and the file ends in it")
                scanner.moved(start)
                continue
            at = buf.offset(start)
            why = f"{e.msg} at byte {buf.offset(e.pos)}" if isinstance(e, json.JSONDecodeError) else _why(e)
            buf.pos, buf.next_starts = end, kind == "next"
            return RecordProblem(RejectReason.INVALID_JSON, f"element {index} at byte {at} is not valid JSON: {why}")
        if end == len(buf.text) and buf.more():  # a number may go on in the next chunk
            continue
        buf.pos = end
        bad = buf.escaped_byte(start, end)
        if bad is not None:
            return RecordProblem(
                RejectReason.INVALID_UTF8, f"element {index} is not valid UTF-8: see byte {buf.offset(bad)}"
            )
        return value


def _skip_large(buf: Text, scanner: Scanner, scanned: int, index: int, max_record_bytes: int) -> RecordProblem:
    """Skip an element over max_record_bytes chunk by chunk, holding none of it, and reject it."""
    at = buf.offset()
    while True:
        buf.pos = dropped = scanned
        if not buf.more():
            return _stop(buf, index, f"element {index} is larger than max_record_bytes={max_record_bytes} and "
                                     "the file ends in it")
        scanner.moved(dropped)
        kind, scanned = scanner.run(buf.text, buf.pos)
        if kind != "more":
            buf.pos, buf.next_starts = scanned, kind == "next"
            return RecordProblem(RejectReason.RECORD_TOO_LARGE, f"element {index} at byte {at} is larger than "
                                                              f"max_record_bytes={max_record_bytes}; skipped")


def _garbage(buf: Text, index: int, max_record_bytes: int) -> RecordProblem:
    """Text where a ',' or ']' should be: skip to the next separator and reject it as one element."""
    found = buf.text[buf.pos : buf.pos + 20]
    at = buf.offset()
    scanner = Scanner()
    scanned = 0  # counted from buf.pos
    while True:
        kind, end = scanner.run(buf.text, buf.pos + scanned)
        if kind != "more":
            buf.pos, buf.next_starts = end, kind == "next"
            return RecordProblem(
                RejectReason.INVALID_JSON, f"expected ',' or ']' at byte {at} before element {index}, found {found!r}"
            )
        scanned, dropped = end - buf.pos, buf.pos
        if len(buf.text) - buf.pos > max_record_bytes or not buf.more():
            return _stop(buf, index, f"expected ',' or ']' at byte {at}, found {found!r}")
        scanner.moved(dropped)


def _why(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _stop(buf: Text, index: int, why: str) -> _Stop:
    return _Stop(
        RejectReason.INVALID_JSON,
        f"reading stopped at element {index}, byte {buf.offset()}: {why}; the rest of the file is not read and "
        "is counted as this one reject",
    )
