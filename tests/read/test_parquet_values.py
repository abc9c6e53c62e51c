"""Parquet values Python cannot hold (issue 12, item 15): the row is rejected, the other rows are read."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from litdata.read import read_sources
from litdata.records import Conversation, RejectReason

TURNS = [{"from": "human", "value": "What is shown?"}, {"from": "gpt", "value": "A square."}]
YEAR_3_MILLION_MS = 10**17  # a valid int64 timestamp[ms], far past datetime's year 9999


def test_an_out_of_range_timestamp_rejects_its_row_only(tmp_path):
    path = tmp_path / "t.parquet"
    ids = pa.array([0, YEAR_3_MILLION_MS, 5], type=pa.timestamp("ms"))
    pq.write_table(pa.table({"id": ids, "conversations": [TURNS] * 3}), path)
    first, bad, last = read_sources([path])
    assert isinstance(first, Conversation) and isinstance(last, Conversation)
    assert bad.reason is RejectReason.BAD_FIELD_TYPE and bad.provenance.index == 1
    assert "column 'id' (timestamp[ms])" in bad.message


def test_an_out_of_range_timestamp_inside_a_turn_rejects_its_row_only(tmp_path):
    path = tmp_path / "t.parquet"
    turn = pa.struct([("from", pa.string()), ("value", pa.string()), ("at", pa.timestamp("ms"))])
    rows = [[{**t, "at": stamp} for t in TURNS] for stamp in (0, YEAR_3_MILLION_MS, 7)]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "conversations": pa.array(rows, type=pa.list_(turn))}), path)
    items = list(read_sources([path]))
    assert [type(x).__name__ for x in items] == ["Conversation", "Reject", "Conversation"]
    assert items[1].reason is RejectReason.BAD_FIELD_TYPE and "column 'conversations'" in items[1].message
