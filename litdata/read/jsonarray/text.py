"""The file as text for the array reader: decoded chunk by chunk, undecodable bytes kept as surrogate escapes (so
the element holding them can be rejected as invalid_utf8 instead of failing the file), with byte offsets for
messages.
"""

from __future__ import annotations

import codecs
import re
from typing import BinaryIO

SPACE = re.compile(r"[ \t\n\r]*")
ESCAPED_BYTE = re.compile("[\ud800-\udfff]")  # only surrogateescape makes these: valid UTF-8 never does


class Text:
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
        bad = ESCAPED_BYTE.search(self.text, start, end)
        return None if bad is None else bad.start()

    def skip_space(self) -> str:
        """Skip JSON whitespace; the next character, or '' at end of file."""
        while True:
            self.pos = SPACE.match(self.text, self.pos).end()
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
