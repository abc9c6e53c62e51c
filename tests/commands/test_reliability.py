"""What the compiler guarantees when runs are killed, disks fill up and shards get corrupted."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from litdata.verify.folder import verify
from tests.helpers.compile import compile_cli

SMALL_SHARDS = ["--max-shard-sequences", "10", "--no-progress"]


def demo_cmd(out):
    return [sys.executable, "-m", "litdata", "demo", "--out", str(out), *SMALL_SHARDS]


def files(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    assert compile_cli("demo", "--out", out, *SMALL_SHARDS) == 0
    assert len(list(out.glob("shard-*.tar"))) > 5
    return files(out)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1.5, 3.0, 4.5])
def test_a_killed_compile_resumes_to_the_same_bytes(reference, tmp_path, kill_after):
    out = tmp_path / "out"
    proc = subprocess.Popen(demo_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for shard in out.glob("shard-*.tar"):  # whatever has a final name is a complete shard
        with tarfile.open(shard) as tar:
            tar.getmembers()
    assert subprocess.run(demo_cmd(out), capture_output=True).returncode == 0
    assert not list(out.glob(".*.partial")) and not list(out.glob(".*.tmp"))
    assert files(out) == reference


def test_a_full_disk_leaves_no_partial_shard_and_no_manifest(tmp_path, monkeypatch, capsys):
    from litdata.shards import writer as shards

    real_write = shards._HashingFile.write
    budget = {"left": 200_000}

    def write(self, b):
        budget["left"] -= len(b)
        if budget["left"] < 0:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.f.name))
        return real_write(self, b)

    monkeypatch.setattr(shards._HashingFile, "write", write)
    out = tmp_path / "out"
    assert compile_cli("demo", "--out", out, *SMALL_SHARDS) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
    assert not list(out.glob(".*.partial"))
    for shard in out.glob("shard-*.tar"):
        with tarfile.open(shard) as tar:
            assert tar.getmembers()


def test_an_output_path_that_cannot_be_created_is_one_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert compile_cli("demo", "--out", blocker / "out", "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert "cannot create the folder" in err and len(err.splitlines()) == 1


# --- verify names each kind of corruption ---------------------------------------------------------------------


@pytest.fixture
def copy(demo_out, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(demo_out, out)
    return out


def first_shard(out):
    return out / json.loads((out / "manifest.json").read_text())["shards"][0]["name"]


def rewrite_first_sample(shard, change):
    """Rewrite `shard` with `change(name, bytes) -> bytes | None` applied to the first sample's members."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    first = members[0][0].name.split(".")[0]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            if m.name.startswith(first + "."):
                data = change(m.name.split(".", 1)[1], data)
                if data is None:
                    continue
            m.size = len(data)
            import io

            tar.addfile(m, io.BytesIO(data))


def problems(out):
    rep = verify(out)
    assert not rep.ok
    return "\n".join(rep.problems)


def test_verify_names_a_truncated_tar(copy):
    shard = first_shard(copy)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    text = problems(copy)
    assert shard.name in text and ("unreadable tar" in text or "bytes, manifest says" in text)


def test_verify_names_a_missing_member(copy):
    rewrite_first_sample(first_shard(copy), lambda name, data: None if name == "classes.npy" else data)
    assert re.search(r"shard-\d+\.tar: sample \w+: classes\.npy: missing", problems(copy))


def test_verify_names_a_wrong_dtype(copy):
    import io

    def to_int64(name, data):
        if name != "tokens.npy":
            return data
        buf = io.BytesIO()
        np.save(buf, np.load(io.BytesIO(data)).astype(np.int64))
        return buf.getvalue()

    rewrite_first_sample(first_shard(copy), to_int64)
    assert "tokens.npy: dtype int64" in problems(copy)


def test_verify_names_a_manifest_mismatch(copy):
    m = json.loads((copy / "manifest.json").read_text())
    m["shards"][0]["sequences"] += 1
    m["counts"]["documents_written"] += 1
    (copy / "manifest.json").write_text(json.dumps(m))
    text = problems(copy)
    assert "sequences, manifest says" in text and "manifest counts say" in text


def test_verify_names_a_supervised_document_start(copy):
    import io

    def supervise_start(name, data):
        if name != "weights.npy":
            return data
        w = np.load(io.BytesIO(data)).copy()
        w[0] = 1.0
        buf = io.BytesIO()
        np.save(buf, w)
        return buf.getvalue()

    rewrite_first_sample(first_shard(copy), supervise_start)
    assert "weight != 0 at document start" in problems(copy)


def test_verify_passes_the_untouched_copy(copy):
    assert verify(copy).ok
    assert os.path.exists(copy / "manifest.json")
