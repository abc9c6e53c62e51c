"""Where a malformed element of a JSON array ends: the resynchronisation after a broken element (see Scanner)."""

from __future__ import annotations

import re

from litdata.read.jsonarray.text import SPACE


class Scanner:
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
                elif c == "]" and text[(after := SPACE.match(text, pos).end()) : after + 1] not in ("]", "}"):
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
