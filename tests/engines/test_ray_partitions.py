"""Partitions of the Ray engine (no Ray needed): read one after another, they give exactly what `read_sources`
gives (JSON Lines, Parquet and JSON arrays, broken records included), whatever the partition size; and the partitions do not depend on anything but the inputs and that size."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdata.engines.partitions import PartitionReader, index_array, plan_partitions
from litdata.read import ReadLimits, read_sources

Q = "What is in the image?"


def record(i: int) -> dict:
    return {"id": f"r{i}", "conversations": [{"from": "human", "value": f"{Q} Number {i}." + "x" * (i % 7)},
                                             {"from": "gpt", "value": f"A thing {i}."}]}


def read_by_partitions(sources, partition_bytes, limits=ReadLimits()):
    """As the Ray engine does: each JSONL partition starts at the lines of the partitions of its file before it."""
    items, next_line = [], 0
    for part in plan_partitions([str(s) for s in sources], partition_bytes, limits):
        reader = PartitionReader(part, limits, first_index=0 if part.start == 0 else next_line)
        items.extend(reader)
        next_line = (0 if part.start == 0 else next_line) + reader.lines
    return items


def write_messy_jsonl(path: Path) -> Path:
    """A BOM, blank lines, a bad line, invalid UTF-8, a line over the record limit, and no final newline."""
    lines = [b"\xef\xbb\xbf" + json.dumps(record(0)).encode()]
    for i in range(1, 60):
        lines.append(json.dumps(record(i)).encode())
        if i % 9 == 0:
            lines.append(b"")
        if i % 13 == 0:
            lines.append(b'{"id": "broken", ')
        if i == 20:
            lines.append(b'{"id": "\xff\xfe"}')
        if i == 30:
            lines.append(json.dumps({"id": "huge", "pad": "y" * 3000}).encode())
    path.write_bytes(b"\n".join(lines))
    return path


@pytest.mark.parametrize("partition_bytes", [1, 97, 500, 4096, 10**9])
def test_jsonl_partitions_read_in_order_give_exactly_the_local_records(tmp_path, partition_bytes):
    src = write_messy_jsonl(tmp_path / "messy.jsonl")
    limits = ReadLimits(max_record_bytes=2000)
    local = list(read_sources([str(src)], limits))
    assert len(local) > 60 and any(getattr(i, "reason", None) for i in local)
    assert read_by_partitions([src], partition_bytes, limits) == local


def test_parquet_partitions_are_runs_of_row_groups_and_read_as_locally(tmp_path):
    src = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([record(i) for i in range(50)]), src, row_group_size=7)
    parts = plan_partitions([str(src)], partition_bytes=1)
    assert [(p.start, p.stop) for p in parts] == [(g, g + 1) for g in range(8)]  # 50 rows / 7 per group
    assert read_by_partitions([src], 1) == list(read_sources([str(src)]))
    assert read_by_partitions([src], 10**9) == list(read_sources([str(src)]))


def write_messy_array(path: Path) -> Path:
    """A JSON array with a broken element (its record's '}' missing), an element over the record limit, invalid
    UTF-8, junk between two elements and a trailing comma."""
    parts = [json.dumps(record(i)).encode() for i in range(60)]
    parts[11] = parts[11][:-1]
    # Over the reader's 1 MiB buffer, so that it is skipped chunk by chunk and rejected as record_too_large.
    parts[23] = json.dumps({"id": "huge", "pad": "y" * (1 << 20) + "y" * 3000}).encode()
    parts[30] = parts[30].replace(b'"r30"', b'"r\xff30"')
    parts[41] = b"oops " + parts[41]
    path.write_bytes(b"[\n" + b",\n".join(parts) + b",\n]")
    return path


@pytest.mark.parametrize("partition_bytes", [1, 300, 1000, 10**9])
def test_json_array_partitions_read_in_order_give_exactly_the_local_records(tmp_path, partition_bytes):
    src = write_messy_array(tmp_path / "messy.json")
    limits = ReadLimits(max_record_bytes=2000)
    local = list(read_sources([str(src)], limits))
    reasons = {i.reason.value for i in local if hasattr(i, "reason")}
    assert {"invalid_json", "invalid_utf8", "record_too_large"} <= reasons
    parts = plan_partitions([str(src)], partition_bytes, limits)
    assert [p.stop for p in parts[:-1]] == [p.start for p in parts[1:]] and parts[-1].stop == -1
    if partition_bytes <= 1000:
        assert len(parts) > 5
    assert read_by_partitions([src], partition_bytes, limits) == local


def test_an_oversized_and_a_broken_element_at_a_partition_boundary_read_as_locally(tmp_path):
    """Cuts right before, at and after the broken and the oversized element (read in small chunks, where the
    reader skips the oversized one without holding it)."""
    src = write_messy_array(tmp_path / "messy.json")
    limits = ReadLimits(max_record_bytes=2000)
    local = list(read_sources([str(src)], limits))
    starts = [c.index for c in index_array(str(src), 1, limits)]
    assert {10, 11, 12, 22, 23, 24} <= set(starts)  # every element starts a partition of 1 byte
    assert read_by_partitions([src], 1, limits) == local


def test_json_arrays_and_lines_keep_their_order_and_indices(tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([record(i) for i in range(20)]))
    lines = tmp_path / "b.jsonl"
    lines.write_text("\n".join(json.dumps(record(i)) for i in range(20)) + "\n")
    parts = plan_partitions([str(arr), str(lines), str(arr)], partition_bytes=300)
    assert [p.source for p in parts][0] == str(arr) and parts[-1].source == str(arr)
    assert sum(p.fmt == "json" for p in parts) > 2
    assert read_by_partitions([arr, lines, arr], 300) == list(read_sources([str(arr), str(lines), str(arr)]))


def test_partitions_depend_only_on_the_inputs_and_the_partition_size(tmp_path):
    src = write_messy_jsonl(tmp_path / "m.jsonl")
    assert plan_partitions([str(src)], 500) == plan_partitions([str(src)], 500)
    size = src.stat().st_size
    assert [(p.start, p.stop) for p in plan_partitions([str(src)], 500)] == [
        (a, min(a + 500, size)) for a in range(0, size, 500)]


def test_ray_address_without_the_ray_engine_is_a_usage_error(tmp_path, capsys):
    from tests.helpers.compile import compile_cli

    assert compile_cli("demo", "--out", tmp_path / "o", "--ray-address", "127.0.0.1:6379") == 2
    assert "--ray-address needs --engine ray" in capsys.readouterr().err
