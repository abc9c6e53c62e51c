"""The offset index of a JSON array, for the Ray engine's partitions: cuts where another reader can start and read
on exactly as one reader over the whole file does.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from litdata.read.jsonarray.reader import CHUNK_BYTES, elements, opened
from litdata.read.jsonarray.text import Text


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

    def at_element(buf: Text, index: int) -> None:
        nonlocal next_at
        if index == 0 or buf.pos >= len(buf.text):  # the array's start, or the end of a truncated file
            return
        at = buf.offset()
        if at >= next_at:
            held = buf.text.encode("utf-8", "surrogateescape") + buf.decoder.getstate()[0]  # the bytes read
            cuts.append(JsonArrayCut(index=index, offset=at, base=buf.base, read_end=buf.base + len(held),
                                     pos=buf.pos, eof=buf.eof, crc=zlib.crc32(held)))
            next_at = at + every_bytes

    for _ in elements(*opened(f, chunk_bytes), max_record_bytes, at_element=at_element):
        pass
    return cuts


def iter_json_array_piece(f: BinaryIO, start: JsonArrayCut | None, stop: int | None, *, max_record_bytes: int,
                          chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, Any]]:
    """The items of elements start.index (0 when start is None) up to `stop` (exclusive; None: to the end),
    exactly as `iter_json_array` gives them. `start` and `stop` come from `index_json_array` with the same
    max_record_bytes and chunk_bytes. OSError when the file no longer matches the cut."""
    if start is None:
        yield from elements(*opened(f, chunk_bytes), max_record_bytes, stop=stop)
        return
    buf = Text(f, chunk_bytes)
    f.seek(start.base)
    raw = f.read(start.read_end - start.base)
    buf.text = buf.decode(raw, final=start.eof)
    buf.base, buf.pos, buf.eof = start.base, start.pos, start.eof
    if zlib.crc32(raw) != start.crc or len(raw) != start.read_end - start.base or start.pos >= len(buf.text):
        raise OSError(f"the file changed since it was indexed (element {start.index} no longer starts at byte "
                      f"{start.offset})")
    yield from elements(buf, start.index, buf.text[start.pos], max_record_bytes, stop=stop)
