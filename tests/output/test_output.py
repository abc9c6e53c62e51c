"""The output folder: a compile deletes or replaces only what a litdata run wrote, and an edited input is a new job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from litdata.output.folder import RUN_FILE, OutputWriter
from litdata.shards.manifest import Manifest
from litdata.shards.schema import FORMAT_VERSION
from litdata.verify.folder import verify
from tests.helpers.compile import compile_cli


def write_dataset(folder: Path, n: int = 12) -> tuple[Path, Path]:
    """n LLaVA records, each with its own small PNG: (source, image root)."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        Image.new("RGB", (8 + i, 6), (10 * i, 120, 200)).save(images / f"{i}.png")
        lines.append(json.dumps({"id": f"r{i}", "image": f"{i}.png", "conversations": [
            {"from": "human", "value": f"<image>\nWhat colour is square number {i}?"},
            {"from": "gpt", "value": f"It is blue, number {i}."}]}))
    source = folder / "data.jsonl"
    source.write_text("\n".join(lines) + "\n")
    return source, images


def compile_args(source, images, out, *extra):
    return ["compile", source, "--image-root", images, "--out", out, "--no-progress", "--seq-len", "1024",
            "--image-tokens", "64", "--max-shard-sequences", "1", *extra]


def only_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path / "in")


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_files_litdata_did_not_write_are_never_deleted(dataset, tmp_path, capsys, overwrite):
    out = tmp_path / "out"
    (out / ".nv-meta").mkdir(parents=True)
    foreign = {"shard-000000.tar": b"another tool's shard", ".nv-meta/mine.yaml": b"a user's metadata",
               "notes.txt": b"unrelated"}
    for name, data in foreign.items():
        (out / name).write_bytes(data)
    assert compile_cli(*compile_args(*dataset, out, *overwrite)) == 2
    assert "which no litdata run recorded writing" in only_error_line(capsys)
    assert {name: (out / name).read_bytes() for name in foreign} == foreign


def test_the_demo_refuses_a_folder_holding_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    assert compile_cli("demo", "--out", out, "--no-progress") == 2
    assert "manifest.json" in only_error_line(capsys)
    assert (out / "manifest.json").read_text() == "{}"


def test_overwrite_replaces_the_recorded_output_and_leaves_other_files(dataset, tmp_path):
    out = tmp_path / "out"
    assert compile_cli(*compile_args(*dataset, out)) == 0
    (out / "notes.txt").write_text("mine")
    assert compile_cli(*compile_args(*dataset, out, "--mode", "vit", "--overwrite")) == 0
    assert (out / "notes.txt").read_text() == "mine"
    recorded = json.loads((out / RUN_FILE).read_text())["files"]
    assert sorted(p.name for p in out.iterdir() if p.name not in (RUN_FILE, "notes.txt")) == recorded
    assert verify(out).ok


def test_an_input_inside_what_would_be_replaced_is_refused(dataset, tmp_path, capsys):
    source, images = dataset
    out = tmp_path / "out"
    assert compile_cli(*compile_args(source, images, out)) == 0
    reject_source = out / "rejects.jsonl"  # a plausible next step: recompile the rejects into the same folder
    reject_source.write_bytes(source.read_bytes())
    assert compile_cli(*compile_args(reject_source, images, out, "--overwrite")) == 2
    assert "the input" in (err := only_error_line(capsys)) and "rejects.jsonl" in err
    assert reject_source.read_bytes() == source.read_bytes()


def test_editing_a_source_makes_another_job_not_a_resume(dataset, tmp_path, capsys):
    source, images = dataset
    out = tmp_path / "out"
    assert compile_cli(*compile_args(source, images, out)) == 0
    before = len(list(out.glob("shard-*.tar")))
    source.write_text("".join(source.read_text().splitlines(keepends=True)[:2]))  # same options, fewer records
    assert compile_cli(*compile_args(source, images, out)) == 2
    assert "different options or inputs" in only_error_line(capsys)
    assert compile_cli(*compile_args(source, images, out, "--overwrite")) == 0
    shards = sorted(p.name for p in out.glob("shard-*.tar"))
    listed = [s["name"] for s in json.loads((out / "manifest.json").read_text())["shards"]]
    assert len(shards) < before and shards == listed
    assert verify(out).ok, verify(out).problems


def test_a_rerun_of_the_same_job_removes_the_shards_it_no_longer_writes(tmp_path):
    first = OutputWriter(tmp_path)
    first.prepare(run_key="k", overwrite=False)
    for name in ("shard-000000.tar", "shard-000001.tar", "shard-000002.tar"):
        first.claim(name)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".shard-000002.tar.partial").write_bytes(b"half")  # killed while writing
    first.claim("manifest.json")
    (tmp_path / "manifest.json").write_text("{}")
    again = OutputWriter(tmp_path)
    again.prepare(run_key="k", overwrite=False)  # the same job: resume, keep the shards
    assert (tmp_path / "shard-000002.tar").exists()
    assert not (tmp_path / "manifest.json").exists()  # it listed shards this run may not write again
    again.claim("shard-000000.tar")
    again.write_manifest(Manifest(format_version=FORMAT_VERSION))
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_FILE, "manifest.json", "shard-000000.tar"]
    assert json.loads((tmp_path / RUN_FILE).read_text())["files"] == ["manifest.json", "shard-000000.tar"]


def test_a_name_is_recorded_before_its_file_exists(tmp_path):
    out = OutputWriter(tmp_path)
    out.prepare(run_key="k", overwrite=False)
    out.claim("shard-000007.tar")
    assert json.loads((tmp_path / RUN_FILE).read_text())["files"] == ["shard-000007.tar"]
    with pytest.raises(ValueError):
        out.claim("../elsewhere.tar")


def test_a_failed_side_file_leaves_no_temporary(tmp_path):
    out = OutputWriter(tmp_path)
    out.prepare(run_key="k", overwrite=False)
    with pytest.raises(RuntimeError), out.jsonl("rejects.jsonl") as w:
        w.write({"a": 1})
        raise RuntimeError("the harmful model broke")
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_FILE]


def test_an_image_changed_during_the_compile_fails_it_cleanly(dataset, tmp_path, capsys, monkeypatch):
    from litdata.shards import writer as shards

    source, images = dataset
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 6), (1, 2, 3)).save(secret)
    real_write = shards.ShardWriter.write

    def swap_then_write(self, seq):  # the race: after the workers checked every image, before the copy
        for i in range(12):
            (images / f"{i}.png").unlink(missing_ok=True)
            (images / f"{i}.png").symlink_to(secret)
        return real_write(self, seq)

    monkeypatch.setattr(shards.ShardWriter, "write", swap_then_write)
    out = tmp_path / "out"
    assert compile_cli(*compile_args(source, images, out)) == 1
    assert "changed" in only_error_line(capsys)
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [RUN_FILE]
