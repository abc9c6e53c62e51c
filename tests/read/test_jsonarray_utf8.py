"""The array reader decodes strictly until the first undecodable byte and searches elements for escaped bytes only
from then on; it finds every invalid_utf8 element that searching every element finds, with the same message."""

from __future__ import annotations

import io
import json
import random

import pytest

from litdata.read.jsonarray.index import index_json_array, iter_json_array_piece
from litdata.read.jsonarray.reader import iter_json_array
from litdata.read.jsonarray.text import ESCAPED_BYTE, Text
from litdata.records import RecordProblem, RejectReason
from tests.helpers.json_arrays import rec

BAD = [b"\xff", b"\xfe\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]


def array_with_bad_bytes(seed: int) -> bytes:
    rng = random.Random(seed)
    parts = [json.dumps(rec(i, answer=f"Ça coûte {i} € 🙂")).encode() for i in range(60)]
    for i in rng.sample(range(60), rng.randint(1, 4)):
        at = parts[i].index(b"What is") + rng.randint(0, 6)
        parts[i] = parts[i][:at] + rng.choice(BAD) + parts[i][at:]
    tail = rng.choice([b"]", b"]" + rng.choice(BAD), b"," + parts[0][:9] + rng.choice(BAD)])  # bad bytes at the end
    return b"[" + b",\n".join(parts) + tail


def comparable(items) -> list:
    return [(i, (v.reason, v.detail) if isinstance(v, RecordProblem) else v) for i, v in items]


def searching_every_element(monkeypatch: pytest.MonkeyPatch, read):
    """What the reader gave when every element was searched for escaped bytes."""

    def always(buf, start: int, end: int) -> int | None:
        bad = ESCAPED_BYTE.search(buf.text, start, end)
        return None if bad is None else bad.start()

    with monkeypatch.context() as m:
        m.setattr(Text, "escaped_byte", always)
        return read()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("chunk_bytes", [7, 100, 1 << 20])
def test_invalid_utf8_elements_are_found_as_by_searching_every_element(seed, chunk_bytes, monkeypatch):
    data = array_with_bad_bytes(seed)

    def read() -> list:
        return comparable(iter_json_array(io.BytesIO(data), max_record_bytes=1 << 20, chunk_bytes=chunk_bytes))

    got = read()
    assert got == searching_every_element(monkeypatch, read)
    assert any(isinstance(v, tuple) and v[0] is RejectReason.INVALID_UTF8 for _, v in got)


@pytest.mark.parametrize("seed", range(4))
def test_a_piece_after_a_bad_byte_reads_as_the_whole_file_does(seed, monkeypatch):
    data = array_with_bad_bytes(seed)
    whole = comparable(iter_json_array(io.BytesIO(data), max_record_bytes=1 << 20, chunk_bytes=300))
    cuts = index_json_array(io.BytesIO(data), max_record_bytes=1 << 20, every_bytes=500, chunk_bytes=300)
    starts, stops = [None, *cuts], [c.index for c in cuts] + [None]
    pieces = []
    for start, stop in zip(starts, stops):
        pieces += iter_json_array_piece(io.BytesIO(data), start, stop, max_record_bytes=1 << 20, chunk_bytes=300)
    assert len(cuts) > 5 and comparable(pieces) == whole


def test_valid_utf8_never_switches_to_searching():
    data = json.dumps([rec(i, answer="中文 🙂 é") for i in range(50)], ensure_ascii=False).encode()
    buf = Text(io.BytesIO(data), 5)  # 5-byte chunks cut most characters in two
    while buf.more():
        pass
    assert not buf.escapes and buf.text == data.decode()
