"""The benchmark workload generator: streamed records, a shared image pool, LLaVA-665K proportions."""

from __future__ import annotations

import itertools
import json
import time

from benchmarks.workload import main, write_workload
from benchmarks.world.generate import BLOCK, SOURCES, generate_records


def test_a_2000_record_workload_has_the_llava_665k_proportions(tmp_path):
    paths = write_workload(2000, tmp_path, seed=3, images=120, fmt="jsonl")
    lines = paths.records.read_text().splitlines()
    assert len(lines) == 2000 and paths.image_count == len(list(paths.image_root.rglob("*.*")))
    counts = json.loads(paths.ground_truth.read_text())["source_counts"]
    for spec in SOURCES:
        expected = 2000 * spec.per_block / BLOCK
        assert abs(counts[spec.name] - expected) <= 0.05 * expected + 6, spec.name
    for line in lines[:300]:
        rec = json.loads(line)
        img = rec.get("image")
        for rel in [img] if isinstance(img, str) else img or []:
            assert (paths.image_root / rel).is_file()


def test_json_and_jsonl_hold_the_same_records(tmp_path):
    a = write_workload(300, tmp_path / "a", seed=1, images=40, fmt="json")
    b = write_workload(300, tmp_path / "b", seed=1, images=40, fmt="jsonl")
    assert json.loads(a.records.read_text()) == [json.loads(x) for x in b.records.read_text().splitlines()]
    truth = json.loads(a.ground_truth.read_text())
    assert truth["records"] == 300 and sum(truth["source_counts"].values()) == 300
    assert truth["template_records"]["single_word"] > 0.25 * 300


def test_records_stream_without_materialising_the_whole_set():
    t0 = time.perf_counter()
    first = list(itertools.islice(generate_records(10**9, 0), 5))
    assert len(first) == 5 and time.perf_counter() - t0 < 5
    later = next(generate_records(1, 0, start=123_456))
    assert later.index == 123_456 and later.record["id"].endswith("0123456")


def test_cli_prints_what_it_wrote(tmp_path, capsys):
    assert main(["--records", "50", "--out", str(tmp_path), "--images", "20", "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert "llava_50.jsonl" in out and "50 records" in out and "images" in out
