"""Hostile data and arguments on the command line (issue 12, items 13, 14 and 16): rich markup and control
characters are printed literally, and every failure is one line naming the thing and the reason, with a
non-zero exit, no traceback and no temporary file left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.compile import compile_cli

EVIL_ID = "evil\x1b[2J\x1b]0;pwned\x07\x00id"
FIFO_OK = hasattr(os, "mkfifo")


def record(i: int, rid: str | None = None) -> dict:
    return {"id": rid or f"r{i}", "conversations": [
        {"from": "human", "value": f"[INST] Answer briefly. [/INST] What is {i} plus one?"},
        {"from": "gpt", "value": f"It is {i + 1}."}]}


@pytest.fixture(scope="module")
def marked_out(tmp_path_factory) -> tuple[Path, str]:
    """A compile into a folder named like rich markup, of records whose frequent sentence is `[INST] ...`, one
    of them with ESC sequences and a NUL in its id; with the summary the compile printed."""
    root = tmp_path_factory.mktemp("marked")
    src = root / "src.json"
    src.write_text(json.dumps([record(i, EVIL_ID if i == 3 else None) for i in range(12)]))
    out = root / "out[/b]"
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert compile_cli("compile", src, "--out", out, "--no-progress") == 0
    return out, stdout.getvalue()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    from litdata.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    got = capsys.readouterr()
    return rc, got.out, got.err


def one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_summary_prints_markup_in_the_folder_name_and_template_shapes_literally(marked_out):
    out, summary = marked_out
    assert f"litdata compile -> {out}" in " ".join(summary.split())  # the title may wrap
    assert "[/inst] what is <num> plus one?" in summary and "[inst] answer briefly." in summary


def test_inspect_escapes_control_characters_of_a_record_id(marked_out, capsys):
    out, _ = marked_out
    rc, text, _ = run_cli(capsys, "inspect", out, "--document", EVIL_ID, "--no-color")
    assert rc == 0
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert r"id evil\x1b[2J\x1b]0;pwned\x07\x00id" in text
    rc, text, _ = run_cli(capsys, "inspect", out, "--sequences", "5", "--no-color")
    assert rc == 0 and "\x1b" not in text and r"evil\x1b[2J" in text


def test_inspect_prints_a_missing_document_id_that_looks_like_markup(marked_out, capsys):
    out, _ = marked_out
    rc, text, err = run_cli(capsys, "inspect", out, "--document", "[/nope]")
    assert rc == 1 and "no document with id '[/nope]'" in text and "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing", "empty", "fifo", "folder", "unsupported"])
def test_templates_on_an_unusable_source_is_one_line_and_exit_2(tmp_path, capsys, kind):
    src = tmp_path / ("src.txt" if kind == "unsupported" else "src.json")
    reason = {"missing": "no such file", "empty": "the file is empty", "fifo": "not a regular file",
              "folder": "not a regular file", "unsupported": "unknown format '.txt'"}[kind]
    if kind == "empty":
        src.write_text("")
    elif kind == "fifo":
        if not FIFO_OK:
            pytest.skip("no FIFOs here")
        os.mkfifo(src)
    elif kind == "folder":
        src.mkdir()
    elif kind == "unsupported":
        src.write_text("hello\n")
    rc, _, err = run_cli(capsys, "templates", src)
    assert rc == 2
    one_line_error(err, "litdata templates: error:", str(src), reason)


def test_templates_out_that_cannot_be_written_is_one_line_and_leaves_no_temporary(tmp_path, capsys):
    src = tmp_path / "src.json"
    src.write_text(json.dumps([record(i) for i in range(6)]))
    rc, _, err = run_cli(capsys, "templates", src, "--out", tmp_path)
    assert rc == 2
    one_line_error(err, f"--out {tmp_path}", "is a folder")
    # A folder that cannot take the file, for every user (root too, who may write into a read-only folder): its
    # parent is a regular file.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, _, err = run_cli(capsys, "templates", src, "--out", blocker / "t.parquet")
    assert rc == 2
    one_line_error(err, "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "src.json"]


def test_templates_without_a_usable_record_says_so_in_one_line_and_exits_1(tmp_path, capsys):
    src = tmp_path / "src.json"
    src.write_text(json.dumps([{"id": "a", "conversations": []}, {"id": "b"}]))  # both rejected by the reader
    rc, out, err = run_cli(capsys, "templates", src)
    assert rc == 1
    assert "empty_conversations" in err and "missing_conversations" in err  # each reject is reported
    assert err.strip().splitlines()[-1] == "litdata templates: no usable records"
    assert "task templates (0 records, 2 rejected)" in out and "Traceback" not in err


@pytest.mark.parametrize("manifest", ["{not json", "[]", '{"format": "litdata", "shards": 7}', ""])
@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_malformed_manifest_is_one_line_not_a_traceback(tmp_path, capsys, manifest, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(manifest)
    rc, _, err = run_cli(capsys, command, out)
    if rc == 1 and not err.strip():  # verify reports problems on stdout
        return
    assert rc in (1, 2)
    one_line_error(err, f"litdata {command}: error:")


def test_a_broken_harmful_model_is_one_line_before_anything_is_written(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(
        {"model_type": "bert", "id2label": {"0": "safe", "1": "harmful"}, "label2id": {"safe": 0, "harmful": 1}}))
    src = tmp_path / "src.json"
    src.write_text(json.dumps([record(i) for i in range(3)]))
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, "compile", src, "--out", out, "--harmful-model", model, "--no-progress")
    assert rc == 2
    one_line_error(err, f"--harmful-model {model}", "cannot load")
    assert not out.exists() or not list(out.glob(".*.tmp"))


def test_a_failing_side_file_writer_leaves_no_temporary(tmp_path):
    from litdata.output.folder import OutputWriter

    folder = OutputWriter(tmp_path)
    with pytest.raises(RuntimeError), folder.jsonl("rejects.jsonl") as w:
        w.write({"a": 1})
        raise RuntimeError("the run failed")
    # Only litdata's record of the names it claimed (written before each file, so that --overwrite can delete
    # exactly those) remains: no temporary, no partial rejects.jsonl.
    assert [p.name for p in tmp_path.iterdir()] == [".litdata-run.json"]


def test_an_unexpected_error_is_one_line_naming_its_type(monkeypatch, capsys):
    import litdata.commands.verify as verify_command

    def boom(args):
        raise KeyError("shards")

    monkeypatch.setattr(verify_command, "run", boom)
    rc, _, err = run_cli(capsys, "verify", ".")
    assert rc == 1
    one_line_error(err, "litdata verify: error: KeyError: 'shards'")


def test_the_html_report_of_a_folder_named_like_a_glob(marked_out, tmp_path, capsys):
    out, _ = marked_out
    rc, text, err = run_cli(capsys, "inspect", out, "--html", tmp_path / "r.html", "--samples", "3")
    assert rc == 0 and "Traceback" not in err, err
    assert "[/inst] what is" in (tmp_path / "r.html").read_text()


def test_verify_prints_names_from_a_hostile_manifest_with_their_control_characters_escaped(demo_out, tmp_path,
                                                                                            capsys):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo_out, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"][0]["name"] = "shard\x1b[2J\x00.tar"
    (out / "manifest.json").write_text(json.dumps(manifest))
    rc, text, err = run_cli(capsys, "verify", out)
    assert rc == 1 and "Traceback" not in err
    assert "\x1b" not in text + err and "\x00" not in text + err
    assert r"shard\x1b[2J\x00.tar" in text + err


@pytest.mark.parametrize("kind", ["fifo", "folder", "empty"])
def test_compile_names_an_unusable_source_before_writing_anything(tmp_path, capsys, kind):
    src = tmp_path / "src.json"
    if kind == "fifo":
        if not FIFO_OK:
            pytest.skip("no FIFOs here")
        os.mkfifo(src)
    elif kind == "folder":
        src.mkdir()
    else:
        src.write_text("  \n")
    rc, _, err = run_cli(capsys, "compile", src, "--out", tmp_path / "out", "--no-progress")
    assert rc == 2
    one_line_error(err, "litdata compile: error:", str(src), "empty" if kind == "empty" else "not a regular file")
    assert not (tmp_path / "out").exists()
