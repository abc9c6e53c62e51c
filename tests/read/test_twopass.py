"""The local engine's two passes read the sources once when they fit the memory budget, twice otherwise, and the
output is the same either way: the second pass gets the first pass's items, in order, rejects included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from litdata import config
from litdata.read import read_sources, twopass
from litdata.read.twopass import TwoPassReader, estimated_memory
from litdata.records import Conversation, Reject
from tests.helpers.compile import compile_cli
from tests.helpers.output_digests import DEMO_DATA, DEMO_TOKENIZER, digests


def _records(path: Path) -> Path:
    good = {"conversations": [{"from": "human", "value": "Describe the cat."}, {"from": "gpt", "value": "A cat."}]}
    bad = {"conversations": [{"from": "gpt", "value": "no question first"}]}
    path.write_text("\n".join(json.dumps(r) for r in [good, bad, "not an object", good]) + "\n")
    return path


def _sizes(*paths: Path) -> list[tuple[str, int]]:
    return [(str(p), p.stat().st_size) for p in paths]


def test_estimate_weighs_parquet_more_than_json():
    assert estimated_memory([("a.jsonl", 100), ("b.json", 10)]) == 220
    assert estimated_memory([("s3://bucket/c.PARQUET", 100)]) == 800


def test_kept_second_pass_gives_the_first_pass_objects_in_order(tmp_path):
    src = _records(tmp_path / "r.jsonl")
    passes = TwoPassReader(_sizes(src), config.ReadLimits())
    assert passes.keep
    mined = list(passes.first())
    second = list(passes.second())
    assert passes.records == len(second) == 4
    assert [type(i) for i in second] == [Conversation, Reject, Reject, Conversation]
    assert [i for i in second if isinstance(i, Conversation)] == mined
    assert all(a is b for a, b in zip(mined, [i for i in second if isinstance(i, Conversation)]))
    assert second == list(read_sources([str(src)]))


def test_over_budget_the_second_pass_reads_again(tmp_path):
    src = _records(tmp_path / "r.jsonl")
    passes = TwoPassReader(_sizes(src), config.ReadLimits(), budget=src.stat().st_size)  # under 2x the file size
    assert not passes.keep
    mined = list(passes.first())
    second = list(passes.second())
    assert second == list(read_sources([str(src)]))
    assert not any(a is b for a, b in zip(mined, second))


def test_an_unfinished_first_pass_is_read_again_in_full(tmp_path):
    src = _records(tmp_path / "r.jsonl")
    passes = TwoPassReader(_sizes(src), config.ReadLimits())
    first = passes.first()
    next(first)  # mining stopped after one record (mining disabled never starts the pass)
    assert list(passes.second()) == list(read_sources([str(src)]))


@pytest.fixture
def demo(tmp_path):
    shutil.copytree(DEMO_DATA, tmp_path / "demo")
    return tmp_path / "demo"


def _compile_demo(demo: Path, out: Path, *extra: str) -> dict[str, str]:
    rc = compile_cli("compile", demo / "llava_demo.json", demo / "extra.jsonl", "--image-root", demo / "images",
                     "--tokenizer", DEMO_TOKENIZER, "--out", out, "--no-progress", *extra)
    assert rc in (0, 1)  # 1: the demo plants rejects
    return digests(out)


def _count_reads(monkeypatch) -> list[int]:
    calls = [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return read_sources(*args, **kwargs)

    monkeypatch.setattr(twopass, "read_sources", counting)
    return calls


@pytest.mark.parametrize("workers", ["1", "2"])
def test_reading_once_or_twice_writes_the_same_bytes(demo, tmp_path, monkeypatch, workers):
    reads = _count_reads(monkeypatch)
    once = _compile_demo(demo, tmp_path / "once", "--workers", workers)
    assert reads[0] == 1
    twice = _compile_demo(demo, tmp_path / "twice", "--workers", workers, "--first-pass-memory", "0")
    assert reads[0] == 3
    assert "rejects.jsonl" in once and "templates.parquet" in once
    assert once == twice


def test_without_mining_the_sources_are_read_by_the_second_pass(demo, tmp_path, monkeypatch):
    reads = _count_reads(monkeypatch)
    kept = _compile_demo(demo, tmp_path / "kept", "--no-mine-templates")
    again = _compile_demo(demo, tmp_path / "again", "--no-mine-templates", "--first-pass-memory", "0")
    assert reads[0] == 2
    assert kept == again
    manifest = json.loads((tmp_path / "kept" / "manifest.json").read_text())
    assert manifest["counts"]["records_read"] > 0


def test_the_memory_budget_is_not_part_of_the_job(demo, tmp_path):
    """Like --workers, it changes no byte: a rerun into the same folder with another budget is the same job."""
    kept = _compile_demo(demo, tmp_path / "out")
    assert _compile_demo(demo, tmp_path / "out", "--first-pass-memory", "0") == kept  # no --overwrite needed
