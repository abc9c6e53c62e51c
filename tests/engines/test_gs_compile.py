"""Sources, `--image-root` and `--out` as gs:// URLs (a Google Cloud Storage emulator on 127.0.0.1, started by
the test), with the local engine and with Ray: the output is what the same compile from local paths gives,
byte for byte once the inputs' names written into it are made local; and the access token, which comes only from the environment,
appears in no output file and in nothing printed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from litdata.demo import DEMO_DIR, DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR
from litdata.output.folder import RUN_FILE
from tests.helpers.compile import compile_cli
from tests.helpers.gcs_emulator import gcs_emulator

pytest.importorskip("gcp_storage_emulator")
if importlib.util.find_spec("gcsfs") is None:  # not imported here: the emulator's settings must come first
    pytest.skip("gcsfs is not installed", allow_module_level=True)

BUCKET = "litdata-gs-test"
TOKEN = "ya29.gs-token-never-printed-0123456789"
OPTIONS = ("--tokenizer", DEMO_TOKENIZER_DIR, "--no-progress")


@dataclass(frozen=True)
class Inputs:
    """The demo's sources and images twice: in a local folder and under a gs:// prefix of the same length, so
    that the names written into the output (a record's JSON names its source) take the same bytes either way."""

    local: Path
    url: str

    def sources(self, root: str | Path) -> list[str]:
        return [f"{root}/{p.name}" for p in DEMO_SOURCES]

    def localized(self, data: bytes) -> bytes:
        return data.replace(self.url.encode(), str(self.local).encode())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(gcsfs filesystem on the emulator, Inputs): the demo uploaded under Inputs.url and copied to Inputs.local."""
    local = tmp_path_factory.mktemp("inputs") / "data"
    base = f"gs://{BUCKET}/"
    while len(str(local)) <= len(base):  # a very short temporary folder: make the local name the longer one
        local = local / "data"
    url = base + "d" * (len(str(local)) - len(base))
    with gcs_emulator(TOKEN) as fs:
        fs.mkdir(BUCKET)
        for path in [*DEMO_SOURCES, *sorted(p for p in DEMO_IMAGE_ROOT.rglob("*") if p.is_file())]:
            rel = path.relative_to(DEMO_DIR).as_posix()
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, local / rel)
            fs.put_file(str(path), f"{url[len('gs://'):]}/{rel}")
        fs.invalidate_cache()
        yield fs, Inputs(local, url)


@pytest.fixture(scope="module")
def local_out(inputs, tmp_path_factory) -> Path:
    """The same compile from the local copies."""
    _, where = inputs
    out = tmp_path_factory.mktemp("local") / "out"
    assert compile_cli("compile", *where.sources(where.local), "--image-root", where.local / "images",
                       "--out", out, *OPTIONS) == 0
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_matches_local(got: Path, want: Path, where: Inputs) -> None:
    """The same files, byte for byte once the gs:// names of the inputs are replaced by the local ones; except
    what hashes those names: the run file's key, and in the manifest each shard's sha256, which must then be
    that of the shard as uploaded."""
    names = sorted(p.relative_to(want).as_posix() for p in want.rglob("*") if p.is_file())
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == names
    manifest = json.loads((want / "manifest.json").read_text())
    assert manifest["shards"] and manifest["counts"]["images"] > 0  # images were fetched from the image root
    for name in names:
        have = where.localized((got / name).read_bytes())
        if name == "manifest.json":
            have_manifest = json.loads(have)
            for shard in have_manifest["shards"]:
                assert shard.pop("sha256") == sha256((got / shard["name"]).read_bytes())
            for shard in manifest["shards"]:
                shard.pop("sha256")
            assert have_manifest == manifest
        elif name == RUN_FILE:
            assert {**json.loads(have), "run_key": ""} == {**json.loads((want / name).read_bytes()), "run_key": ""}
        else:
            assert have == (want / name).read_bytes(), name


def assert_token_nowhere(out: Path, printed) -> None:
    for text in (printed.out, printed.err, *(p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file())):
        assert TOKEN not in text


@pytest.mark.parametrize("engine", [["--engine", "local"], ["--engine", "ray", "--workers", "2",
                                                            "--partition-size", "8KiB"]], ids=["local", "ray"])
def test_compile_from_and_to_gs_matches_the_compile_from_local_paths(inputs, local_out, tmp_path, capfd, engine):
    if engine[1] == "ray":
        pytest.importorskip("ray")
    fs, where = inputs
    out = f"{BUCKET}/out-{engine[1]}"
    assert compile_cli("compile", *where.sources(where.url), "--image-root", f"{where.url}/images",
                       "--out", f"gs://{out}", *OPTIONS, *engine) == 0
    got = tmp_path / "got"
    fs.invalidate_cache()
    fs.get(f"{out}/", str(got), recursive=True)
    assert_matches_local(got, local_out, where)
    assert_token_nowhere(got, capfd.readouterr())
