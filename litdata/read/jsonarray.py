"""A JSON array of records, streamed element by element with bounded memory.

The file is decoded in chunks (undecodable bytes are kept as surrogate escapes, so the element holding them
can be rejected as invalid_utf8 instead of failing the file) and each element is parsed with
`json.JSONDecoder.raw_decode` at C speed. When an element is malformed, a scan aware of strings, nesting and
the JSON grammar (see _Scanner) finds where it ends, also when a '}' is missing or a string is unterminated,
and reading goes on from the next element. An element over max_record_bytes is skipped chunk by chunk and
rejected as record_too_large. Only when the file ends inside an element does reading stop: one final item
then stands for the unread rest.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from litdata.records import RecordProblem, RejectReason

CHUNK_BYTES = 1 << 20
COMPACT_CHARS = 1 << 16
_SPACE = re.compile(r"[ \t\n\r]*")
_ESCAPED_BYTE = re.compile("[\ud800-\udfff]")  # only surrogateescape makes these: valid UTF-8 never does
_DECODER = json.JSONDecoder()


class _Text:
    """The undecoded tail of the file as text, with byte offsets for messages."""

    def __init__(self, f: BinaryIO, chunk_bytes: int) -> None:
        self.f = f
        self.chunk_bytes = chunk_bytes
        # Strict until the first undecodable byte (see decode): while no byte was escaped, no element needs
        # the search for escaped bytes, which costs about a third of parsing the elements.
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.escapes = False  # the text may hold surrogate escapes: decoding has met an undecodable byte
        self.text = ""
        self.pos = 0
        self.base = 0  # byte offset of text[0] in the file
        self.eof = False
        self.next_starts = False  # the last element was cut where the next one starts: no separator before it
        # offset() counts bytes from the last position it was asked about, so that a run of rejects (each
        # naming its byte offset) costs the text between them, not the whole buffer each time.
        self._mark = (0, 0)  # (position in text, its byte offset from text[0])

    def drop_consumed(self) -> None:
        if self.pos:
            self.base += len(self.text[: self.pos].encode("utf-8", "surrogateescape"))
            self.text, self.pos = self.text[self.pos :], 0
            self._mark = (0, 0)

    def more(self) -> bool:
        """Read another chunk, dropping what was consumed. False at end of file."""
        self.drop_consumed()
        if self.eof:
            return False
        # Grow the read with the pending text so a huge element is re-parsed O(log n) times, not O(n).
        raw = self.f.read(max(self.chunk_bytes, len(self.text)))
        if not raw:
            self.text += self.decode(b"", final=True)
            self.eof = True
            return False
        self.text += self.decode(raw)
        return True

    def decode(self, raw: bytes, final: bool = False) -> str:
        """The next bytes as text, undecodable bytes kept as surrogate escapes. Decoded strictly first: the
        decoder keeps its pending bytes when it raises, so the same bytes are decoded again with escapes, and
        from then on always with escapes (`self.escapes`). The text is the same either way."""
        if not self.escapes:
            try:
                return self.decoder.decode(raw, final)
            except UnicodeDecodeError:
                self.escapes = True
                self.decoder.errors = "surrogateescape"
        return self.decoder.decode(raw, final)

    def escaped_byte(self, start: int, end: int) -> int | None:
        """Where text[start:end] holds an undecodable byte's escape, or None. Valid UTF-8 never decodes to a
        surrogate, so while nothing was escaped there is nothing to search."""
        if not self.escapes:
            return None
        bad = _ESCAPED_BYTE.search(self.text, start, end)
        return None if bad is None else bad.start()

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
        at, n = self._mark if pos >= self._mark[0] else (0, 0)
        n += len(self.text[at:pos].encode("utf-8", "surrogateescape"))
        self._mark = (pos, n)
        return self.base + n


class _Stop(RecordProblem):
    """The last item of a file whose reading stopped early; it stands for everything not read."""


def iter_json_array(f: BinaryIO, *, max_record_bytes: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """(index, parsed element or RecordProblem) for every element of the array that starts the file."""
    yield from _elements(*_opened(f, chunk_bytes), max_record_bytes)


def _opened(f: BinaryIO, chunk_bytes: int) -> tuple[_Text, int, str]:
    """The reader at the array's first element: (buffer, index 0, the element's first character)."""
    buf = _Text(f, chunk_bytes)
    buf.more()
    if buf.text.startswith("\ufeff"):
        buf.pos = 1
    if buf.skip_space() != "[":
        raise ValueError("the file does not start with '['")
    buf.pos += 1
    return buf, 0, buf.skip_space()


def _elements(buf: _Text, index: int, ch: str, max_record_bytes: int, *, stop: int | None = None,
              at_element: Callable[[_Text, int], None] | None = None) -> Iterator[tuple[int, Any]]:
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
        yield index, item
        index += 1
        if isinstance(item, _Stop):
            return
        ch = buf.skip_space()
        while not buf.next_starts and ch not in (",", "]"):  # anything else there is one more malformed element
            if ch == "":
                yield index, _stop(buf, index, "the array is not closed: the file ends without ']' (truncated?)")
                return
            item = _garbage(buf, index, max_record_bytes)
            yield index, item
            index += 1
            if isinstance(item, _Stop):
                return
            ch = buf.skip_space()
        if buf.next_starts:
            buf.next_starts = False
            continue  # ch is the first character of the next element
        if ch == ",":
            buf.pos += 1
            ch = buf.skip_space()  # a ']' right after a trailing comma hides no record: accepted
    buf.pos += 1
    if buf.skip_space() != "":
        yield index, _stop(buf, index, "unexpected data after the closing ']'")


def _element(buf: _Text, index: int, max_record_bytes: int) -> Any:
    """Parse the element at buf.pos and move past it: to the ',' or ']' after it, or, when a malformed element
    had to be cut where the next one starts, to that start (buf.next_starts is then set)."""
    scanner: _Scanner | None = None  # built at the first parse failure: most elements never need it
    scanned = 0  # how far the scanner got, counted from the element's start
    while True:
        start = buf.pos
        try:
            value, end = _DECODER.raw_decode(buf.text, start)
        except (ValueError, RecursionError) as e:
            if scanner is None:
                scanner = _Scanner()
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


def _skip_large(buf: _Text, scanner: _Scanner, scanned: int, index: int, max_record_bytes: int) -> RecordProblem:
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


def _garbage(buf: _Text, index: int, max_record_bytes: int) -> RecordProblem:
    """Text where a ',' or ']' should be: skip to the next separator and reject it as one element."""
    found = buf.text[buf.pos : buf.pos + 20]
    at = buf.offset()
    scanner = _Scanner()
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


class _Scanner:
    """Finds where a malformed element ends, token by token, resumable across chunks (so that an element over
    max_record_bytes is skipped without being held). Strings and nesting are tracked, and so are the ways an
    element breaks without its brackets telling:

    * a closer that does not match the innermost opener closes up to its own opener (one missing or stray
      bracket does not swallow the rest of the file);
    * inside an object a '{' or '[' may only follow ':'. Anywhere else there ("...}, {" where the record's '}'
      is missing) the object was never closed: it is closed there, and when that closes the element, the next
      element starts at that bracket;
    * a string cannot hold a raw newline (JSON forbids control characters in strings), so an unterminated string
      ends at the end of its line. Once that happened, a '{' or '[' right after a value also closes arrays: in a
      file with one record per line the lost quote took the record's closers with it;
    * on one line, an unterminated string swaps what is inside and outside strings for the rest of the file. The
      first sign is a value right after a string inside an object (`"What?}, {"from` : `from` is bare). Then that
      string's opening quote is taken as the unmatched one: scanning goes back to just after it, with the state
      from before it, and the rest of the file reads as it was written.
    """

    def __init__(self) -> None:
        # The open brackets, one byte each, and how many of each kind: a hostile element can nest millions
        # deep, and "is there a '[' open?" must not walk the stack for every closer.
        self.stack = bytearray()
        self.open = {_ARRAY: 0, _OBJECT: 0}
        self.prev = "start"  # what came last: start, open, comma, colon, value or done
        self.in_string = False
        self.broken = False
        self.string_start = -1  # the last string's opening quote, while nothing but that string followed it
        self.prev_before_string = "start"  # (the stack cannot have changed since: nothing else followed it)

    def moved(self, dropped: int) -> None:
        """The text lost its first `dropped` characters (the reader moved on): forget positions in them."""
        self.string_start = self.string_start - dropped if self.string_start >= dropped else -1

    def run(self, text: str, pos: int) -> tuple[str, int]:
        """("end", p): the element ends at text[p], a ',' or ']'; ("next", p): it ends before the element that
        starts at text[p]; ("more", p): everything before p is scanned, the rest needs more text."""
        while True:
            if self.in_string:
                pos = _STRING_BODY.match(text, pos).end()
                if pos >= len(text) or (text[pos] == "\\" and pos + 1 >= len(text)):
                    return "more", pos  # the string (or its escape) goes on in the next chunk
                self.in_string = False
                self.prev = "value"
                if text[pos] == "\\":  # a backslash before a raw newline: the newline still ends the string
                    pos += 1
                if text[pos] == "\n":
                    self.broken = True
                    self.string_start = -1
                else:
                    pos += 1  # the closing quote
                continue
            m = _STRUCTURE.search(text, pos)
            bare = bool(text[pos : len(text) if m is None else m.start()].strip())
            if (bare or (m is not None and m.group() == '"')) and self._swapped():
                pos = self.string_start + 1
                self.prev = self.prev_before_string
                self.string_start = -1
                continue
            if bare:  # a bare value (number, literal or junk) between two tokens
                self.prev = "value"
                self.string_start = -1
            if m is None:
                return "more", len(text)
            c, pos = m.group(), m.end()
            if c == '"':
                self.in_string = True
                self.string_start = m.start()
                self.prev_before_string = self.prev
                continue
            self.string_start = -1
            if c == ":":
                self.prev = "colon"
            elif c == ",":
                if not self.stack:
                    return "end", m.start()
                self.prev = "comma"
            elif c in "[{":
                if self.prev != "start":
                    while self.stack and not self._may_open():
                        self._pop()
                    if not self.stack:
                        return "next", m.start()
                self.stack.append(ord(c))
                self.open[ord(c)] += 1
                self.prev = "open"
            else:
                opener = _ARRAY if c == "]" else _OBJECT
                if self.open[opener]:
                    while self._pop() != opener:
                        pass
                elif c == "]" and text[(after := _SPACE.match(text, pos).end()) : after + 1] not in ("]", "}"):
                    # The array itself closes, over any '{' left open; not when more closers follow: then a
                    # stray '}' emptied the stack too early, and this ']' closes an array of the element.
                    return "end", m.start()
                self.prev = "value" if self.stack else "done"

    def _pop(self) -> int:
        b = self.stack.pop()
        self.open[b] -= 1
        return b

    def _may_open(self) -> bool:
        if self.stack[-1] == _OBJECT:
            return self.prev == "colon"
        return self.prev in ("open", "comma") or not self.broken

    def _swapped(self) -> bool:
        """A value right after a string, inside an object: that string's opening quote was unmatched."""
        return self.string_start >= 0 and self.prev == "value" and bool(self.stack) and self.stack[-1] == _OBJECT


_ARRAY, _OBJECT = ord("["), ord("{")
_STRING_BODY = re.compile(r'[^"\\\n]*(?:\\[^\n][^"\\\n]*)*')
_STRUCTURE = re.compile(r'[\[\]{},:"]')


def _why(error: Exception) -> str:
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _stop(buf: _Text, index: int, why: str) -> _Stop:
    return _Stop(
        RejectReason.INVALID_JSON,
        f"reading stopped at element {index}, byte {buf.offset()}: {why}; the rest of the file is not read and "
        "is counted as this one reject",
    )


@dataclass(frozen=True, kw_only=True)
class JsonArrayCut:
    """The reader's state where element `index` starts: enough for another reader to start there and read on
    exactly as one reader over the whole file does (the same buffer, so the same elements, indices, byte offsets
    and messages, also after a broken element was resynchronised). The buffer's text is not stored: it is the
    file's bytes [base, read_end) decoded again (UTF-8 resynchronises at a character boundary, and base is one)."""

    index: int  # the element that starts here
    offset: int  # its byte offset in the file
    base: int  # byte offset of the buffer's first character
    read_end: int  # bytes the reader had read from the file
    pos: int  # the element's first character in the buffer, counted in characters
    eof: bool  # the reader had reached the end of the file
    crc: int  # zlib.crc32 of the bytes [base, read_end): the file is still the one indexed


def index_json_array(f: BinaryIO, *, max_record_bytes: int, every_bytes: int,
                     chunk_bytes: int = CHUNK_BYTES) -> list[JsonArrayCut]:
    """One pass over the array as `iter_json_array` reads it, keeping a cut at the first element that starts
    `every_bytes` or more after the previous cut (the first piece starts at the file's start and has no cut).
    Memory: one reader's buffer, plus one cut per `every_bytes` of file."""
    if every_bytes < 1:
        raise ValueError(f"every_bytes must be >= 1, got {every_bytes}")
    cuts: list[JsonArrayCut] = []
    next_at = every_bytes

    def at_element(buf: _Text, index: int) -> None:
        nonlocal next_at
        if index == 0 or buf.pos >= len(buf.text):  # the array's start, or the end of a truncated file
            return
        at = buf.offset()
        if at >= next_at:
            held = buf.text.encode("utf-8", "surrogateescape") + buf.decoder.getstate()[0]  # the bytes read
            cuts.append(JsonArrayCut(index=index, offset=at, base=buf.base, read_end=buf.base + len(held),
                                     pos=buf.pos, eof=buf.eof, crc=zlib.crc32(held)))
            next_at = at + every_bytes

    for _ in _elements(*_opened(f, chunk_bytes), max_record_bytes, at_element=at_element):
        pass
    return cuts


def iter_json_array_piece(f: BinaryIO, start: JsonArrayCut | None, stop: int | None, *, max_record_bytes: int,
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """The items of elements start.index (0 when start is None) up to `stop` (exclusive; None: to the end),
    exactly as `iter_json_array` gives them. `start` and `stop` come from `index_json_array` with the same
    max_record_bytes and chunk_bytes. OSError when the file no longer matches the cut."""
    if start is None:
        yield from _elements(*_opened(f, chunk_bytes), max_record_bytes, stop=stop)
        return
    buf = _Text(f, chunk_bytes)
    f.seek(start.base)
    raw = f.read(start.read_end - start.base)
    buf.text = buf.decode(raw, final=start.eof)
    buf.base, buf.pos, buf.eof = start.base, start.pos, start.eof
    if zlib.crc32(raw) != start.crc or len(raw) != start.read_end - start.base or start.pos >= len(buf.text):
        raise OSError(f"the file changed since it was indexed (element {start.index} no longer starts at byte "
                      f"{start.offset})")
    yield from _elements(buf, start.index, buf.text[start.pos], max_record_bytes, stop=stop)
