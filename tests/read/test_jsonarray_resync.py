"""A JSON array with one broken element is read to its end (issue 12, item 8): the broken element is one reject
and every other record is read, whatever the layout of the file and wherever the chunks are cut."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from litdata.read.jsonarray.reader import iter_json_array
from litdata.records import RecordProblem, RejectReason
from tests.helpers.json_arrays import BREAKS, LAYOUTS, rec


def read_all(data: bytes, *, max_record_bytes: int = 1 << 20, chunk_bytes: int = 1 << 20) -> list:
    return list(iter_json_array(io.BytesIO(data), max_record_bytes=max_record_bytes, chunk_bytes=chunk_bytes))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("broken", BREAKS)
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 97])
def test_one_broken_element_of_1000_is_one_reject_and_the_rest_is_read(layout, broken, chunk_bytes):
    text = BREAKS[broken](LAYOUTS[layout]([rec(i) for i in range(1000)]))
    items = read_all(text.encode(), chunk_bytes=chunk_bytes)
    assert [i for i, _ in items] == list(range(1000))
    rejected = [(i, v) for i, v in items if isinstance(v, RecordProblem)]
    assert [i for i, _ in rejected] == [10]
    assert rejected[0][1].reason is RejectReason.INVALID_JSON and "element 10 at byte" in rejected[0][1].detail
    assert all(v["id"] == f"r{i}" for i, v in items if i != 10)


def test_an_element_over_the_size_limit_is_skipped_without_holding_it():
    records = [rec(i) for i in range(1000)]
    records[10] = rec(10, answer='long \\"escaped\\" answer ' * 100_000)  # 2.6 MB, over the 100 kB limit
    data = json.dumps(records).encode()
    read, rejected = 0, []
    tracemalloc.start()
    try:
        for i, v in iter_json_array(io.BytesIO(data), max_record_bytes=100_000, chunk_bytes=4096):
            read += 1
            if isinstance(v, RecordProblem):
                rejected.append((i, v))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == 1000 and [i for i, _ in rejected] == [10]
    too_large = rejected[0][1]
    assert too_large.reason is RejectReason.RECORD_TOO_LARGE and "max_record_bytes=100000" in too_large.detail
    # The element is 2.6 MB; holding it (or a copy of it) would put the peak above that. The reader's own buffers,
    # the rest of the array's records and the json module's scratch space come to about 1.25 MB here.
    assert peak < 1_500_000, f"peak {peak} bytes: the large element was held"


def test_an_unclosed_last_element_is_one_reject():
    text = json.dumps([rec(0), rec(1)])
    items = read_all((text[: text.rindex("}")] + "]").encode())  # the last record's '}' is missing
    assert len(items) == 2 and isinstance(items[0][1], dict) and isinstance(items[1][1], RecordProblem)
