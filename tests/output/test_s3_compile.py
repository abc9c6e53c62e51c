"""Sources, `--image-root` and `--out` on S3 (moto's server on 127.0.0.1, started by the test): the compile
gives what the same compile from local paths gives, up to the names of the inputs; and the credentials, which
come only from the environment, appear in no output file and in nothing printed."""

from __future__ import annotations

import json
import os

import pytest

from litdata.demo import DEMO_DIR, DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR
from tests.helpers.compile import compile_cli, read_samples

moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

BUCKET = "litdata-test"
SECRET = "s3cr3t-never-printed-0123456789"
PREFIX = f"s3://{BUCKET}/data"  # stands for DEMO_DIR: data/llava_demo.json, data/extra.jsonl, data/images/...


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server holding the demo sources and images; credentials in the environment only."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import fsspec

    fsspec.config.conf.pop("s3", None)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(BUCKET)
    for path in [*DEMO_SOURCES, *sorted(p for p in DEMO_IMAGE_ROOT.rglob("*") if p.is_file())]:
        fs.put_file(str(path), f"{BUCKET}/data/{path.relative_to(DEMO_DIR).as_posix()}")
    fsspec.filesystem("s3").invalidate_cache()
    yield fs
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    server.stop()


def localized(data: bytes) -> bytes:
    """Output bytes with the S3 names of the inputs replaced by their local names."""
    return data.replace(PREFIX.encode(), str(DEMO_DIR).encode())


def assert_matches_local(got, demo_out) -> None:
    """`got` (compiled from the S3 copies) holds what `demo_out` (compiled from local paths) holds, once the
    inputs' S3 names are replaced by their local names."""
    want = json.loads((demo_out / "manifest.json").read_text())
    have = json.loads(localized((got / "manifest.json").read_bytes()))
    for m in (want, have):  # shard hashes and sizes differ by the longer source names inside the shards
        m["config"]["tokenizer"].pop("path")
        for s in m["shards"]:
            s.pop("sha256"), s.pop("bytes")
    assert have == want
    for name in ("rejects.jsonl", "harmful_audit.jsonl", "templates.parquet"):
        a, b = localized((got / name).read_bytes()), (demo_out / name).read_bytes()
        assert a.splitlines() == b.splitlines(), name
    for shard in want["shards"]:
        a, b = read_samples(got / shard["name"]), read_samples(demo_out / shard["name"])
        assert len(a) == len(b) > 0
        for x, y in zip(a, b):
            assert sorted(x) == sorted(y)
            for member in x:
                if member.endswith("npy"):
                    assert (x[member] == y[member]).all()
                elif member == "json":
                    assert localized(x[member]) == y[member]
                else:
                    assert x[member] == y[member], member  # image bytes, fetched from S3


def test_compile_from_and_to_s3_matches_the_local_compile(s3, demo_out, tmp_path, capfd):
    sources = [f"{PREFIX}/{p.name}" for p in DEMO_SOURCES]
    out_url = f"s3://{BUCKET}/out"
    assert compile_cli("compile", *sources, "--image-root", f"{PREFIX}/images", "--out", out_url,
                       "--tokenizer", DEMO_TOKENIZER_DIR, "--no-progress") == 0
    got = tmp_path / "got"
    s3.get(f"{BUCKET}/out/", str(got), recursive=True)
    assert_matches_local(got, demo_out)
    printed = capfd.readouterr()
    for text in (printed.out, printed.err, *(p.read_bytes().decode("latin-1") for p in got.rglob("*") if p.is_file())):
        assert SECRET not in text


def test_a_missing_s3_source_is_one_line_and_exit_2(s3, tmp_path, capsys):
    assert compile_cli("compile", f"{PREFIX}/nope.jsonl", "--out", tmp_path / "o", "--no-progress") == 2
    err = capsys.readouterr().err
    assert "s3://litdata-test/data/nope.jsonl: no such file" in err and "Traceback" not in err


def test_ray_workers_read_sources_and_images_from_s3(s3, demo_out, tmp_path):
    """The engine's own local Ray instance: its workers get the credentials from the environment they start in."""
    pytest.importorskip("ray")

    out = tmp_path / "ray"
    assert compile_cli("compile", *[f"{PREFIX}/{p.name}" for p in DEMO_SOURCES], "--image-root", f"{PREFIX}/images",
                       "--out", out, "--tokenizer", DEMO_TOKENIZER_DIR, "--no-progress", "--engine", "ray",
                       "--workers", "2", "--partition-size", "4KiB") == 0
    assert_matches_local(out, demo_out)


def test_ray_with_an_s3_out_writes_the_shards_on_the_driver(s3, demo_out, tmp_path, monkeypatch):
    """A URL --out is staged in a folder on the driver only, which Ray workers elsewhere could not write to:
    the driver writes the shards itself, and the uploaded output is the local compile's, byte for byte."""
    pytest.importorskip("ray")
    from litdata.commands import compile as compile_command

    engines, make_engine = [], compile_command.engine_from_args
    monkeypatch.setattr(compile_command, "engine_from_args", lambda *a: engines.append(make_engine(*a)) or engines[-1])
    assert compile_cli("compile", *DEMO_SOURCES, "--image-root", DEMO_IMAGE_ROOT, "--tokenizer", DEMO_TOKENIZER_DIR,
                       "--out", f"s3://{BUCKET}/ray-out", "--no-progress", "--engine", "ray", "--workers", "2",
                       "--partition-size", "4KiB") == 0
    got = tmp_path / "got"
    s3.get(f"{BUCKET}/ray-out/", str(got), recursive=True)
    (engine,) = engines
    assert engine.shards_on_driver and engine.shard_tasks == 0
    local = {p.relative_to(demo_out): p.read_bytes() for p in demo_out.rglob("*") if p.is_file()}
    assert {p.relative_to(got): p.read_bytes() for p in got.rglob("*") if p.is_file()} == local
