"""One atomic write (issue 11): a file appears whole under its name or not at all, and no temporary is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from litdata.shards.atomic import AtomicFile, atomic_file, atomic_write


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")
    assert atomic_write(target, b"new") == target
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_failed_stream_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "rejects.jsonl"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(target) as tmp, open(tmp, "wb") as f:
        f.write(b"half of the ")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["rejects.jsonl"]


def test_a_writer_that_takes_a_path_writes_the_temporary_in_the_same_folder(tmp_path):
    target = tmp_path / "templates.parquet"
    with atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".")  # same file system; hidden until complete
        Path(tmp).write_bytes(b"table")
        assert not target.exists()
    assert target.read_bytes() == b"table"


def test_a_killed_runs_temporary_is_not_appended_to(tmp_path):
    target = tmp_path / "index.sqlite"
    AtomicFile(target).temp.write_bytes(b"stale")
    with atomic_file(target) as tmp, open(tmp, "ab") as f:
        f.write(b"fresh")
    assert target.read_bytes() == b"fresh"


def test_a_folder_that_is_a_file_raises_the_writers_error_not_the_cleanups(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NotADirectoryError):
        atomic_write(tmp_path / "a-file" / "out.json", b"{}")
