"""A JSON array cut through its offset index (litdata/read/jsonarray/index.py, used by the Ray engine's partitions):
read piece after piece, it gives exactly the items of one reader over the whole file (the same values, indices
and reject messages), wherever the cuts and the read chunks fall, also around broken, oversized and
non-UTF-8 elements, and the cuts depend only on the file and the piece size."""

from __future__ import annotations

import io
import itertools
import json

import pytest

from litdata.read.jsonarray.index import index_json_array, iter_json_array_piece
from litdata.read.jsonarray.reader import iter_json_array
from litdata.records import RecordProblem
from tests.helpers.json_arrays import BREAKS, LAYOUTS, rec


def as_comparable(items) -> list:
    """RecordProblems compare by identity: compare their reason and detail instead."""
    return [(i, ("reject", v.reason, v.detail) if isinstance(v, RecordProblem) else v) for i, v in items]


def read_whole(data: bytes, limit: int, chunk: int) -> list:
    return as_comparable(iter_json_array(io.BytesIO(data), max_record_bytes=limit, chunk_bytes=chunk))


def read_in_pieces(data: bytes, limit: int, chunk: int, every: int) -> tuple[list, int]:
    """Each piece from its own file handle, as a Ray task would read it; (items, number of pieces)."""
    cuts = index_json_array(io.BytesIO(data), max_record_bytes=limit, every_bytes=every, chunk_bytes=chunk)
    starts, stops = [None, *cuts], [c.index for c in cuts] + [None]
    items = []
    for start, stop in zip(starts, stops):
        items += iter_json_array_piece(io.BytesIO(data), start, stop, max_record_bytes=limit, chunk_bytes=chunk)
    return as_comparable(items), len(starts)


def hostile_array() -> bytes:
    """A BOM, a broken element, invalid UTF-8, an element over the limit, a missing comma, junk between
    elements, multi-byte characters and a trailing comma."""
    parts = [json.dumps(rec(i, answer=f"Ça coûte {i} € 🙂")).encode() for i in range(40)]
    parts[5] = parts[5].replace(b"}]", b"]", 1)  # a turn's '}' is missing
    parts[9] = parts[9].replace(b"What is", b"What \xff\xfe is")
    parts[14] = json.dumps(rec(14, answer="x" * 5000)).encode()  # over the 2000-byte limit below
    parts[20] = parts[20] + b" " + parts[21]  # no comma between 20 and 21
    del parts[21]
    parts[25] = b"nonsense]" + parts[25]
    parts[30] = parts[30].replace(b'"What is', b"What is", 1)  # a lost opening quote
    return b"\xef\xbb\xbf[\n" + b",\n".join(parts) + b",\n]\n"


@pytest.mark.parametrize("every", [1, 150, 700, 3000, 10**9])
@pytest.mark.parametrize("chunk", [61, 1000, 1 << 20])
def test_pieces_of_a_hostile_array_give_exactly_the_items_of_one_pass(every, chunk):
    data = hostile_array()
    whole = read_whole(data, 2000, chunk)
    reasons = {v[1].value for _, v in whole if isinstance(v, tuple)}
    assert {"invalid_json", "invalid_utf8"} <= reasons
    if chunk < 2000:  # the reader applies the limit to an element that outgrows its buffer
        assert "record_too_large" in reasons
    got, pieces = read_in_pieces(data, 2000, chunk, every)
    assert got == whole
    if every <= 700:
        assert pieces > 5


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("broken", BREAKS)
def test_pieces_cut_next_to_a_resynchronised_element_read_as_one_pass(layout, broken):
    data = BREAKS[broken](LAYOUTS[layout]([rec(i) for i in range(30)])).encode()
    whole = read_whole(data, 1 << 20, 97)
    assert any(isinstance(v, tuple) for _, v in whole)
    for every in (1, 97, 400):
        assert read_in_pieces(data, 1 << 20, 97, every)[0] == whole


@pytest.mark.parametrize("tail", [b'{"id": "cut', b'{"id": "a"} {"id": "b"}', b'{"id": "a"}] trailing', b""])
def test_a_truncated_or_trailing_end_is_read_in_the_last_piece_as_in_one_pass(tail):
    data = b"[" + b",".join(json.dumps(rec(i)).encode() for i in range(20)) + b"," + tail
    whole = read_whole(data, 1 << 20, 64)
    assert isinstance(whole[-1][1], tuple)  # the reject that stands for the unread rest or the extra data
    assert read_in_pieces(data, 1 << 20, 64, 200)[0] == whole


def test_cuts_fall_at_element_starts_every_n_bytes_and_depend_only_on_the_file_and_size():
    data = json.dumps([rec(i) for i in range(100)]).encode()
    cuts = index_json_array(io.BytesIO(data), max_record_bytes=1 << 20, every_bytes=1000)
    again = index_json_array(io.BytesIO(data), max_record_bytes=1 << 20, every_bytes=1000, chunk_bytes=1 << 20)
    assert cuts == again and len(cuts) > 5
    for c in cuts:
        assert data[c.offset : c.offset + 1] == b"{"
        assert json.loads(data[c.offset :].split(b"}]}")[0] + b"}]}")["id"] == f"r{c.index}"
    assert all(b.offset - a.offset >= 1000 for a, b in itertools.pairwise(cuts))


def test_a_file_changed_since_it_was_indexed_is_an_error_not_wrong_records():
    data = json.dumps([rec(i) for i in range(50)]).encode()
    cut = index_json_array(io.BytesIO(data), max_record_bytes=1 << 20, every_bytes=500)[2]
    changed = b"[" + b" " * 7 + data[1:]
    with pytest.raises(OSError, match=f"element {cut.index} no longer starts at byte {cut.offset}"):
        list(iter_json_array_piece(io.BytesIO(changed), cut, None, max_record_bytes=1 << 20))
