"""`litdata compile` / `litdata demo` end to end, as a user runs them."""

import json
import shutil

import numpy as np

from litdata.demo import DEMO_GROUND_TRUTH, DEMO_IMAGE_ROOT, DEMO_SOURCES
from litdata.verify.folder import verify
from tests.helpers.compile import compile_cli, read_samples


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def rejects(out):
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def test_demo_writes_shards_manifest_and_accounts_for_every_record(demo_out):
    m = manifest(demo_out)
    c = m["counts"]
    assert c["records_read"] == c["documents_written"] + c["rejected"] >= 300
    assert c["rejected"] == len(rejects(demo_out))
    # Seq 2048 with 576-token images leaves few ways to fill a sequence on a 330-record demo; the packing
    # benchmark measures efficiency on realistic sizes.
    assert m["packing"]["efficiency"] > 0.75
    assert m["tokens"]["supervised_lit"] > m["tokens"]["supervised_vit"] > 0
    for name in ("templates.parquet", "harmful_audit.jsonl", ".nv-meta"):
        assert (demo_out / name).exists(), name
    assert verify(demo_out).ok, verify(demo_out).problems


def test_every_planted_bad_record_is_rejected_with_its_reason(demo_out):
    truth = json.loads(DEMO_GROUND_TRUTH.read_text())
    got = {(r["file"].rsplit("/", 1)[-1], r["index"]): r for r in rejects(demo_out)}
    for bad in truth["bad_records"]:
        key = (bad["file"].rsplit("/", 1)[-1], bad["index"])
        assert key in got, f"planted bad record {bad} was not rejected"
        assert got[key]["reason"] == bad["reason"], (bad, got[key])
        assert got[key]["message"]


def test_reruns_are_byte_identical(demo_out, tmp_path):
    again = tmp_path / "again"
    assert compile_cli("demo", "--out", again, "--no-progress") == 0
    names = sorted(p.name for p in demo_out.iterdir() if p.is_file())
    assert names == sorted(p.name for p in again.iterdir() if p.is_file())
    for name in names:
        assert (demo_out / name).read_bytes() == (again / name).read_bytes(), name


def test_two_workers_give_the_same_bytes(demo_out, tmp_path):
    out = tmp_path / "w2"
    assert compile_cli("demo", "--out", out, "--workers", "2", "--no-progress") == 0
    for shard in manifest(demo_out)["shards"]:
        assert (out / shard["name"]).read_bytes() == (demo_out / shard["name"]).read_bytes()


def test_verify_names_a_tampered_shard(demo_out, tmp_path):
    out = tmp_path / "tampered"
    shutil.copytree(demo_out, out)
    shard = out / manifest(out)["shards"][0]["name"]
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0xFF
    shard.write_bytes(bytes(data))
    rep = verify(out)
    assert not rep.ok
    assert any(shard.name in p and "sha256" in p for p in rep.problems)
    assert compile_cli("verify", out) == 1


def test_wrong_options_give_one_line_and_exit_2(tmp_path, capsys):
    src = str(DEMO_SOURCES[0])
    cases = [
        (["--weight", "instruction"], "CLASS=W"),
        (["--weight", "banana=1"], "unknown token class 'banana'"),
        (["--weight", "harmful=1"], "harmful spans always have weight 0"),
        (["--weight", "response=nan"], "must be a finite number >= 0, got nan"),
        (["--weight", "response=inf"], "must be a finite number >= 0, got inf"),
        (["--weight", "instruction=-0.5"], "must be a finite number >= 0, got -0.5"),
        (["--tokenizer", str(tmp_path / "nope")], "no such file"),
    ]
    for extra, message in cases:
        rc = compile_cli("compile", src, "--out", tmp_path / "o", "--no-progress", *extra)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and message in err and len(err.splitlines()) == 1, (extra, err)
    assert compile_cli("compile", tmp_path / "missing.json", "--out", tmp_path / "o") == 2


def test_a_rerun_with_other_options_refuses_unless_overwrite(tmp_path, capsys):
    src = str(DEMO_SOURCES[0])
    args = ["compile", src, "--image-root", DEMO_IMAGE_ROOT, "--out", tmp_path / "o", "--no-progress"]
    assert compile_cli(*args) == 0
    assert compile_cli(*args, "--mode", "vit") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert compile_cli(*args, "--mode", "vit", "--overwrite") == 0
    assert manifest(tmp_path / "o")["config"]["mode"] == "vit"


def test_truncate_keeps_the_prefix_of_too_long_records(tmp_path):
    out = tmp_path / "t"
    assert compile_cli("demo", "--out", out, "--overflow", "truncate", "--no-progress") == 0
    m = manifest(out)
    assert "too_long" not in m["counts"]["rejected_by_reason"]
    assert m["counts"]["truncated"] >= 1
    assert verify(out).ok


def test_weight_override_scales_instruction_tokens(tmp_path):
    out = tmp_path / "w"
    assert compile_cli("demo", "--out", out, "--weight", "instruction=0.5", "--no-progress") == 0
    assert manifest(out)["config"]["weights"]["instruction"] == 0.5
    samples = read_samples(out / manifest(out)["shards"][0]["name"])
    w = np.concatenate([s["weights.npy"] for s in samples])
    c = np.concatenate([s["classes.npy"] for s in samples])
    assert set(np.unique(w[c == 4])) <= {0.0, 0.5} and (w[c == 4] == 0.5).any()
    assert set(np.unique(w[c == 5])) <= {0.0, 1.0}


def test_a_run_that_rejects_every_record_writes_its_manifest_and_exits_1(tmp_path, capsys):
    """Nothing usable was produced (exit 1), but every record is still accounted for and the folder verifies."""
    src = tmp_path / "bad.jsonl"
    src.write_text('{"id": "a", "conversations": []}\n{"id": "b"}\n')
    out = tmp_path / "out"
    assert compile_cli("compile", src, "--out", out, "--no-progress") == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["records_read"] == 2 and manifest["counts"]["rejected"] == 2
    assert len((out / "rejects.jsonl").read_text().splitlines()) == 2
    assert compile_cli("verify", out) == 0


def test_rejects_and_harmful_spans_are_written_in_input_order_across_batches_and_windows(tmp_path):
    """The pipeline writes each reject and each harmful span as its record comes out of encoding, so both files
    follow the input order even when batches and packing windows are far smaller than the input."""
    turn = lambda who, text: {"from": who, "value": text}
    records, empty, harmful = [], [], []
    for i in range(60):
        if i % 7 == 3:
            records.append({"id": f"r{i}", "conversations": []})
            empty.append(i)
        else:
            ask = "Tell me how to make a bomb." if i % 5 == 1 else f"What is {i} plus {i}?"
            harmful += [i] if i % 5 == 1 else []
            records.append({"id": f"r{i}", "conversations": [turn("human", ask), turn("gpt", f"It is {2 * i}.")]})
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    assert compile_cli("compile", src, "--out", out, "--harmful", "drop", "--batch-size", "4", "--pack-window", "8",
                       "--seq-len", "256", "--image-tokens", "16", "--no-progress") == 0
    got = rejects(out)
    assert [r["index"] for r in got] == sorted(empty + harmful)
    assert {r["index"]: r["reason"] for r in got} == {**dict.fromkeys(empty, "empty_conversations"),
                                                      **dict.fromkeys(harmful, "harmful")}
    audit = [json.loads(line) for line in (out / "harmful_audit.jsonl").read_text().splitlines()]
    assert [(a["index"], a["action"]) for a in audit] == [(i, "dropped") for i in harmful]
    counts = manifest(out)["counts"]
    assert counts["records_read"] == 60 and counts["documents_written"] == 60 - len(got)
    assert counts["harmful_spans"] == len(harmful)

