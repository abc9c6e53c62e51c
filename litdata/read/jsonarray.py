"""A JSON array of records, streamed element by element with bounded memory.

The file is decoded in chunks (undecodable bytes are kept as surrogate escapes, so the element holding them
can be rejected as invalid_utf8 instead of failing the file) and each element is parsed with
`json.JSONDecoder.raw_decode` at C speed. When an element is malformed, a string/bracket-aware scan finds
where it ends (the next ',' or ']' at the array's depth) and reading goes on from there. Only when no end
can be found within max_record_bytes, or the file ends inside an element, does reading stop: one final item
then stands for the unread rest.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from litdata.read.problem import RecordError
from litdata.records import RejectReason

CHUNK_BYTES = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_ESCAPED_BYTE = re.compile("[\ud800-\udfff]")  # only surrogateescape makes these: valid UTF-8 never does
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]|"', re.DOTALL)
_DECODER = json.JSONDecoder()


class _Text:
    """The undecoded tail of the file as text, with byte offsets for messages."""

    def __init__(self, f: BinaryIO, chunk_bytes: int) -> None:
        self.f = f
        self.chunk_bytes = chunk_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text = ""
        self.pos = 0
        self.base = 0  # byte offset of text[0] in the file
        self.eof = False

    def more(self) -> bool:
        """Read another chunk, dropping what was consumed. False at end of file."""
        if self.pos:
            self.base += len(self.text[: self.pos].encode("utf-8", "surrogateescape"))
            self.text, self.pos = self.text[self.pos :], 0
        if self.eof:
            return False
        # Grow the read with the pending text so a huge element is re-parsed O(log n) times, not O(n).
        raw = self.f.read(max(self.chunk_bytes, len(self.text)))
        if not raw:
            self.text += self.decoder.decode(b"", final=True)
            self.eof = True
            return False
        self.text += self.decoder.decode(raw)
        return True

    def skip_space(self) -> str:
        """Skip JSON whitespace; the next character, or '' at end of file."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def offset(self, pos: int | None = None) -> int:
        pos = self.pos if pos is None else pos
        return self.base + len(self.text[:pos].encode("utf-8", "surrogateescape"))


class _Stop(RecordError):
    """The last item of a file whose reading stopped early; it stands for everything not read."""


def iter_json_array(f: BinaryIO, *, max_record_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """(index, parsed element or RecordError) for every element of the array that starts the file."""
    buf = _Text(f, chunk_bytes)
    buf.more()
    if buf.text.startswith("\ufeff"):
        buf.pos = 1
    if buf.skip_space() != "[":
        raise ValueError("the file does not start with '['")
    buf.pos += 1
    index = 0
    ch = buf.skip_space()
    while ch != "]":
        if ch == "":
            yield index, _stop(buf, index, "the file ends where an element was expected (truncated file?)")
            return
        item = _element(buf, index, max_record_bytes)
        yield index, item
        index += 1
        if isinstance(item, _Stop):
            return
        ch = buf.skip_space()
        while ch not in (",", "]"):  # anything else before the separator is one more malformed element
            if ch == "":
                yield index, _stop(buf, index, "the array is not closed: the file ends without ']' (truncated?)")
                return
            item = _garbage(buf, index, max_record_bytes)
            yield index, item
            index += 1
            if isinstance(item, _Stop):
                return
            ch = buf.skip_space()
        if ch == ",":
            buf.pos += 1
            ch = buf.skip_space()  # a ']' right after a trailing comma hides no record: accepted
    buf.pos += 1
    if buf.skip_space() != "":
        yield index, _stop(buf, index, "unexpected data after the closing ']'")


def _element(buf: _Text, index: int, max_record_bytes: int) -> Any:
    """Parse the element at buf.pos and move past it."""
    while True:
        start = buf.pos
        try:
            value, end = _DECODER.raw_decode(buf.text, start)
        except (ValueError, RecursionError) as e:
            end = _scan_end(buf.text, start)
            if end is None:  # incomplete in this buffer (or malformed beyond it): read on, within the limit
                if len(buf.text) - start > max_record_bytes:
                    return _stop(buf, index, f"element {index} is larger than max_record_bytes={max_record_bytes}")
                if not buf.more():
                    return _stop(buf, index, f"element {index} is not valid JSON ({_why(e)}) and the file ends in it")
                continue
            at = buf.offset(start)
            why = f"{e.msg} at byte {buf.offset(e.pos)}" if isinstance(e, json.JSONDecodeError) else _why(e)
            buf.pos = end
            return RecordError(RejectReason.INVALID_JSON, f"element {index} at byte {at} is not valid JSON: {why}")
        if end == len(buf.text) and buf.more():  # a number may go on in the next chunk
            continue
        buf.pos = end
        bad = _ESCAPED_BYTE.search(buf.text, start, end)
        if bad is not None:
            return RecordError(
                RejectReason.INVALID_UTF8, f"element {index} is not valid UTF-8: see byte {buf.offset(bad.start())}"
            )
        return value


def _garbage(buf: _Text, index: int, max_record_bytes: int) -> RecordError:
    """Text where a ',' or ']' should be: skip to the next separator and reject it as one element."""
    found = buf.text[buf.pos : buf.pos + 20]
    at = buf.offset()
    while True:
        end = _scan_end(buf.text, buf.pos)
        if end is not None:
            buf.pos = end
            return RecordError(
                RejectReason.INVALID_JSON, f"expected ',' or ']' at byte {at} before element {index}, found {found!r}"
            )
        if len(buf.text) - buf.pos > max_record_bytes or not buf.more():
            return _stop(buf, index, f"expected ',' or ']' at byte {at}, found {found!r}")


def _scan_end(text: str, start: int) -> int | None:
    """Position of the ',' or ']' that ends the value starting at `start`, aware of strings and nesting; None
    when it is not in `text`. A closer that does not match the innermost opener closes up to its own opener,
    so one missing or stray bracket does not swallow the rest of the file."""
    stack: list[str] = []
    for m in _TOKEN.finditer(text, start):
        tok = m.group()
        if tok == '"':  # an unterminated string: its end is in a later chunk, or nowhere
            return None
        c = tok[0]
        if c in "[{":
            stack.append(c)
        elif c in "]}":
            opener = "[" if c == "]" else "{"
            if opener in stack:
                while stack.pop() != opener:
                    pass
            elif c == "]" and not stack:
                return m.start()  # the array itself closes
        elif c == "," and not stack:
            return m.start()
    return None


def _why(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _stop(buf: _Text, index: int, why: str) -> _Stop:
    return _Stop(
        RejectReason.INVALID_JSON,
        f"reading stopped at element {index}, byte {buf.offset()}: {why}; the rest of the file is not read and "
        "is counted as this one reject",
    )
