"""`litdata verify` checks what a compile claims beyond the shards' format (issue 12, item 12): token ids inside
the vocabulary, the manifest's token totals, and the side files (rejects.jsonl, templates.parquet, the energon
metadata and every SHARD.tar.idx). Each problem names the file and what is wrong."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from adapters.megatron.data import PackedShardDataset
from adapters.megatron.shards import CorruptShardError
from litdata.inspect.reader import CompiledFolder, InspectError
from litdata.verify.folder import verify
from tests.helpers.shard_fixtures import edit_shard


@pytest.fixture
def compiled(demo_out: Path, tmp_path: Path) -> Path:
    out = tmp_path / "c"
    shutil.copytree(demo_out, out)
    return out


def problems(out: Path) -> list[str]:
    rep = verify(out)
    assert not rep.ok
    return rep.problems


def edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_the_compiled_demo_passes_every_check(demo_out):
    assert verify(demo_out).problems == []


@pytest.mark.parametrize("bad_id", [-7, 2**31 - 1])
def test_a_token_id_outside_the_vocabulary_is_named(compiled, bad_id):
    shard = compiled / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        key = tar.getmembers()[0].name.partition(".")[0]

    def poke(name: str, data: bytes) -> bytes:
        if name != f"{key}.tokens.npy":
            return data
        f = io.BytesIO(data)
        assert np.lib.format.read_magic(f) == (1, 0)
        np.lib.format.read_array_header_1_0(f)
        header = f.tell()  # the array's bytes follow the header: change one id in place
        tokens = np.frombuffer(data, np.int32, offset=header).copy()
        tokens[5] = bad_id
        return data[:header] + tokens.tobytes()

    edit_shard(shard, poke)
    vocab = json.loads((compiled / "manifest.json").read_text())["config"]["tokenizer"]["vocab_size"]
    assert f"shard-000000.tar: sample {key}: tokens.npy: token ids [{bad_id}] outside the vocabulary [0, {vocab})" \
        in problems(compiled)
    with pytest.raises(InspectError, match=rf"sample {key}: tokens.npy: token ids \[{bad_id}\] outside"):
        list(CompiledFolder.open(compiled).sequences())  # the tokenizer could not decode it
    edit_manifest(compiled, lambda m: m["shards"][0].update(sha256=_sha(shard), bytes=shard.stat().st_size))
    with pytest.raises(CorruptShardError, match=rf"{key}\.tokens\.npy: token ids \[{bad_id}\] outside"):
        list(PackedShardDataset(compiled, shuffle=False))  # an embedding lookup would fail (or read junk)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_manifest_token_total_that_is_wrong_is_named(compiled):
    edit_manifest(compiled, lambda m: m["tokens"].update(total=m["tokens"]["total"] * 10))
    total = json.loads((compiled / "manifest.json").read_text())["tokens"]["total"]
    assert problems(compiled) == [f"manifest.json: tokens.total is {total}, the shards hold {total // 10}"]


@pytest.mark.parametrize("field", ["expanded_total", "supervised_lit", "supervised_vit", "weight_sum"])
def test_every_manifest_token_figure_is_checked(compiled, field):
    edit_manifest(compiled, lambda m: m["tokens"].update({field: m["tokens"][field] + 1}))
    assert len(problems(compiled)) == 1 and f"tokens.{field} is" in problems(compiled)[0]


def test_a_class_count_that_is_wrong_is_named(compiled):
    edit_manifest(compiled, lambda m: m["tokens"]["by_class"].update(response=0))
    assert [p for p in problems(compiled) if "tokens.by_class.response is 0" in p]


def test_a_deleted_rejects_file_is_named(compiled):
    (compiled / "rejects.jsonl").unlink()
    assert len(problems(compiled)) == 1 and problems(compiled)[0].startswith("rejects.jsonl: cannot open")


def test_rejects_that_disagree_with_the_manifest_counts_are_named(compiled):
    lines = (compiled / "rejects.jsonl").read_text().splitlines()
    (compiled / "rejects.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert problems(compiled)[0].startswith(f"rejects.jsonl: {len(lines) - 1} rejects")


def test_an_empty_templates_file_is_named(compiled):
    (compiled / "templates.parquet").write_bytes(b"")
    assert problems(compiled) == ["templates.parquet: sha256 differs from the manifest"]


@pytest.mark.parametrize("name", [".info.json", "split.yaml", "dataset.yaml", "index.sqlite", "index.uuid"])
def test_missing_energon_metadata_is_named(compiled, name):
    (compiled / ".nv-meta" / name).unlink()
    assert problems(compiled) == [f".nv-meta: missing {name} (energon cannot open the folder)"]


def test_a_missing_or_stale_tar_index_is_named(compiled):
    idx = compiled / "shard-000000.tar.idx"
    good = idx.read_bytes()
    idx.unlink()
    assert problems(compiled) == ["shard-000000.tar.idx: cannot open (No such file or directory)"]
    idx.write_bytes(good[:-8] + (int.from_bytes(good[-8:], "little") + 512).to_bytes(8, "little"))
    assert problems(compiled) == ["shard-000000.tar.idx: sample offsets differ from the shard's"]


def test_energon_counts_that_disagree_with_the_shards_are_named(compiled):
    info = compiled / ".nv-meta" / ".info.json"
    meta = json.loads(info.read_text())
    meta["shard_counts"]["shard-000000.tar"] += 1
    info.write_text(json.dumps(meta))
    assert problems(compiled) == [".nv-meta/.info.json: shard sample counts differ from the shards"]
