"""`manifest.json` is read and written in one place (issue 11): `Manifest.read` turns any malformed or hostile
manifest into one `ManifestError` naming the field, and a compile's manifest reads back to the same bytes."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from litdata.output.folder import dump_json
from litdata.shards.manifest import Manifest
from litdata.shards.manifest_check import ManifestError
from litdata.shards.manifest_sections import Counts, Packing, ShardEntry, TemplatesEntry, TokenTotals
from litdata.shards.schema import FORMAT_NAME, FORMAT_VERSION

SHA = "0" * 64


def compiled_manifest() -> dict:
    """A manifest with every section a compile writes (the figures need not agree with any shard)."""
    return Manifest(
        format_version=FORMAT_VERSION,
        config={"seq_len": 64, "pad_id": 0, "image_token_id": 5, "image_tokens": 4, "image_token_rule": "fixed:4",
                "mode": "lit", "template": "vicuna_v1", "tokenizer": {"path": "t", "vocab_size": 100},
                "weights": {"response": 1.0, "system": 0.0}},
        shards=(ShardEntry(name="shard-000000.tar", sha256=SHA, bytes=10240, sequences=2, documents=3, tokens=50),),
        counts=Counts(records_read=4, documents_written=3, rejected=1, rejected_by_reason={"too_long": 1},
                      truncated=0, images=1, sequences=2, harmful_spans=0),
        tokens=TokenTotals(by_class={"response": 20, "system": 30}, total=50, expanded_total=53, supervised_vit=20,
                           supervised_lit=25, weight_sum=19.5),
        templates=TemplatesEntry(file="templates.parquet", sha256=SHA, count=0),
        inputs=({"path": "a.json", "sha256": SHA, "bytes": 7},),
        packing=Packing(seq_len=64, sequences=2, efficiency=0.5),
        tool={"name": "litdata", "version": "0"},
    ).to_json()


def write(folder: Path, manifest) -> Path:
    path = folder / "manifest.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return path


def test_a_compiles_manifest_reads_back_to_the_same_bytes(demo_out):
    path = demo_out / "manifest.json"
    manifest = Manifest.read(demo_out, compiled=True)
    assert dump_json(manifest.to_json()) == path.read_bytes()
    assert manifest == Manifest.read(path)  # the folder or the file itself


def test_typed_fields_are_what_the_json_says(tmp_path):
    m = Manifest.read(write(tmp_path, compiled_manifest()), compiled=True)
    assert (m.seq_len, m.pad_id, m.image_token_id, m.vocab_size, m.mode) == (64, 0, 5, 100, "lit")
    assert m.image_tokens == 4 and m.image_token_rule == "fixed:4" and m.fixed_image_tokens is None  # format 2
    assert m.shard_names == ["shard-000000.tar"] and m.shards[0].documents == 3
    assert m.counts.rejected_by_reason == {"too_long": 1} and m.tokens.expanded_total == 53
    assert m.image_rule().fixed == 4


def test_format_1_images_take_the_one_fixed_count(tmp_path):
    d = compiled_manifest()
    del d["config"]["image_token_rule"]
    assert Manifest.read(write(tmp_path, d)).fixed_image_tokens == 4


def test_another_producer_may_leave_out_what_only_a_compile_writes(tmp_path):
    d = {"format": {"name": FORMAT_NAME, "version": FORMAT_VERSION}, "config": {"seq_len": 64},
         "shards": [{"name": "shard-000000.tar", "sequences": 2}]}
    m = Manifest.read(write(tmp_path, d))
    assert m.counts is None and m.tokens is None and m.shards[0].sha256 is None
    assert m.to_json() == d  # nothing is added on the way through
    with pytest.raises(ManifestError, match=r"manifest.json: counts, tokens, templates, packing, inputs, tool missing"):
        Manifest.read(tmp_path, compiled=True)


def _set(path: str, value):
    def change(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        d[last] = value
    return change


def _delete(path: str):
    def change(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        del d[last]
    return change


@pytest.mark.parametrize("change, message", [
    (_set("shards", [{"name": "../etc/passwd"}]), "shard name '../etc/passwd': not a shard file name"),
    (_set("shards", [{"name": "/dev/zero"}]), "shard name '/dev/zero': not a shard file name"),
    (_set("shards", [{"name": 7}]), "shard name 7: not a shard file name"),
    (_set("shards", 7), "shards is int, expected a list"),
    (_set("shards", [{"name": "shard-000000.tar"}] * 2), "shards lists a shard twice"),
    (_set("shards", ["shard-000000.tar"]), r"shards\[0\] is str, expected an object"),
    (_set("shards", [{"name": "shard-000000.tar", "bytes": "10"}]), r"shards\[0\].bytes is '10', of the wrong type"),
    (_set("shards", [{"name": "shard-000000.tar", "sequences": True}]), r"shards\[0\].sequences is True"),
    (_set("counts", {"records_read": 1}), "counts.documents_written is missing"),
    (_set("counts", []), "counts is list, expected an object"),
    (_delete("counts.rejected_by_reason"), "counts.rejected_by_reason is missing"),
    (_set("counts.rejected_by_reason", {"x": "1"}), "counts.rejected_by_reason is"),
    (_set("tokens.weight_sum", "19.5"), "tokens.weight_sum is '19.5', of the wrong type"),
    (_set("templates.count", None), "templates.count is None"),
    (_set("packing", "full"), "packing is str"),
    (_set("config", []), "config is list, expected an object"),
    (_set("config.seq_len", 0), "config.seq_len is 0, of the wrong type"),
    (_set("config.seq_len", "64"), "config.seq_len is '64'"),
    (_delete("config.seq_len"), "config.seq_len is missing"),
    (_set("config.image_tokens", -1), "config.image_tokens is -1"),
    (_set("config.weights", {"response": "high"}), "config.weights is"),
    (_set("config.tokenizer", "t"), "config.tokenizer is 't'"),
    (_set("inputs", [3]), "inputs is not a list of objects"),
    (_set("format", {"name": "webdataset", "version": 1}), "not a litdata-packed manifest"),
    (_set("format", "litdata-packed"), "not a litdata-packed manifest"),
    (_set("format.version", "2"), "format.version is '2', expected an integer"),
    (_delete("format"), "not a litdata-packed manifest"),
])
def test_a_hostile_manifest_is_one_error_naming_the_field(tmp_path, change, message):
    d = copy.deepcopy(compiled_manifest())
    change(d)
    path = write(tmp_path, d)
    with pytest.raises(ManifestError, match=message) as e:
        Manifest.read(tmp_path, compiled=True)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("text, message", [("{not json", "invalid JSON"), ("", "invalid JSON"),
                                           ("[]", "a JSON list, expected an object"), ("7", "a JSON int")])
def test_a_manifest_that_is_not_a_json_object_is_one_error(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(ManifestError, match=message):
        Manifest.read(tmp_path)


def test_a_manifest_that_is_not_a_regular_file_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "manifest.json")  # reading it would block forever
    with pytest.raises(ManifestError, match=r"manifest.json: cannot read \(not a regular file\)"):
        Manifest.read(tmp_path)
    with pytest.raises(ManifestError, match="cannot read"):
        Manifest.read(tmp_path / "missing")
