"""The whole command line on generated hostile inputs (issue 12): `compile`, `templates`, `verify` and
`inspect` run through `litdata.cli.main` in forked children (tests/helpers/fuzz_cli_driver.py), each with a time limit.

For every case: it finishes within its limit, exits 0, 1 or 2, prints no traceback, and writes nothing outside
its `--out` (or `--html` file). The inputs come from a seeded generator (LITDATA_FUZZ_SEED, default 12; the
failing case's folder and command are in the assertion message): broken JSON, huge and odd strings, control
characters, rich markup, regex traps, wrong types, bad and escaping images, odd file names, corrupted outputs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a minute or so: the README's test command still runs it

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("LITDATA_FUZZ_SEED", "12"))
LIMIT_S = 120  # per case; a healthy case takes seconds, a hang (regex, reader loop) never ends

STRINGS = [
    "", " ", "\n\n", "What is in the image?", "[INST] Answer briefly. [/INST]", "[/b]", "[bold red]x[/]",
    "\x1b[2J\x1b]0;pwned\x07", "nul\x00byte", "bell\x07\x08\x7f", "\x9b31m C1 CSI", "\u202eevil\u202c",
    "lone \ud800 surrogate", "<image>", "<image><image>\n<image>", "(" + ",".join(["1"] * 40),
    "Pick one of these: " + "- " * 40 + "done?", "[0.1, 0.2, 0.3, 0.4]", "%s%n{0}{}", "../../etc/passwd",
    "é😀" * 50, "word " * 4000, "a" * 30000, "Please answer: " + "[1,2," * 300, '"}]}, {"id": 1',
]
IMAGES = ["ok.png", "garbage.png", "empty.jpg", "missing.png", "../escape.png", "/etc/hostname", "link.png",
          "http://example.com/a.png", "data:image/png;base64,!!!", {"bytes": "not bytes", "path": "x.png"},
          {"bytes": None}, 7, ["ok.png", "ok.png"], None]


def hostile_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind <= 1:
        return rng.choice(STRINGS)
    if kind == 2:
        return rng.choice([None, True, 0, -1, 1e308, 2**70, 3.5])
    if kind == 3:
        return "".join(rng.choice(STRINGS) for _ in range(rng.randrange(1, 4)))
    if kind == 4:
        return nested(rng.randrange(1, 200))
    if kind in (5, 6):
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(["from", "value", "role", "content", "x"]): hostile_value(rng, depth + 1)}


def nested(depth: int):
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


def hostile_record(rng: random.Random, i: int) -> object:
    if rng.random() < 0.1:
        return hostile_value(rng)  # not even an object
    text = lambda: rng.choice(STRINGS) if rng.random() < 0.7 else hostile_value(rng)  # noqa: E731
    turns = [{"from": rng.choice(["human", "gpt", "system", "user", "assistant", "[/b]", "\x1b"]), "value": text()}
             for _ in range(rng.randrange(0, 5))]
    if rng.random() < 0.5:  # mostly well-shaped, so that documents reach the shards too
        turns = [{"from": "human", "value": text()}, {"from": "gpt", "value": text()}]
    rec: dict = {"id": rng.choice([f"r{i}", f"r{i}\x1b[31m", f"[/r{i}]", i, None, f"r{i}\x00"])}
    if rng.random() < 0.15:
        rec["messages"] = [{"role": "user", "content": [{"type": "text", "text": text()}, {"type": "image"}]},
                           {"role": "assistant", "content": text()}]
    else:
        rec["conversations"] = turns if rng.random() < 0.9 else hostile_value(rng)
    if rng.random() < 0.4:
        rec["image"] = rng.choice(IMAGES)
    return rec


def corrupt(rng: random.Random, data: bytes) -> bytes:
    """Sometimes break the file itself: drop a character, splice junk, or cut it."""
    roll = rng.random()
    at = rng.randrange(1, max(2, len(data)))
    if roll < 0.3:
        return data[:at] + data[at + 1 :]
    if roll < 0.5:
        return data[:at] + rng.choice([b'"', b"}", b"]", b",,", b"\xff\xfe", b"\x00", b"[[[["]) + data[at:]
    if roll < 0.6:
        return data[:at]
    return data


def make_images(folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    Image.new("RGB", (8, 6), (200, 10, 10)).save(folder / "ok.png")
    (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (folder / "empty.jpg").write_bytes(b"")
    (folder.parent / "escape.png").write_bytes((folder / "ok.png").read_bytes())
    (folder / "link.png").symlink_to("/etc/hostname")


def write_source(rng: random.Random, path: Path, n: int) -> None:
    records = [hostile_record(rng, i) for i in range(n)]
    if path.suffix == ".jsonl":
        lines = [json.dumps(r).encode() for r in records]
        lines[rng.randrange(len(lines))] = bytes(rng.randrange(256) for _ in range(40))
        path.write_bytes(b"\n".join(lines) + b"\n")
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        conv = [[{"from": "human", "value": rng.choice(STRINGS)}, {"from": "gpt", "value": rng.choice(STRINGS)}]
                for _ in range(n)]
        ids = pa.array([rng.choice([0, 10**17]) for _ in range(n)], type=pa.timestamp("ms"))
        pq.write_table(pa.table({"id": ids, "conversations": conv}), path)
    else:
        path.write_bytes(corrupt(rng, json.dumps(records).encode()))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p)] = (st.st_mtime_ns, st.st_size) if not p.is_dir() else (0, 0)
    return out


def run_batch(root: Path, cases: list[dict]) -> None:
    """Run the cases through the driver and check each; `allowed` lists what a case may create or change."""
    before = snapshot(root)
    for i, case in enumerate(cases):
        case["stdout"], case["stderr"] = str(root / f"log-{case['name']}.out"), str(root / f"log-{case['name']}.err")
        case["limit_s"] = LIMIT_S
        case["argv"] = [str(a) for a in case["argv"]]
        case["allowed"] = [str(a) for a in case["allowed"]]
    (root / "cases.json").write_text(json.dumps(cases))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(ROOT / "tests" / "helpers" / "fuzz_cli_driver.py"), str(root / "cases.json"),
                    str(root / "results.json")], check=True, env=env, timeout=LIMIT_S * (len(cases) + 1))
    results = json.loads((root / "results.json").read_text())
    after = snapshot(root)
    allowed = [str(a) for c in cases for a in c["allowed"]] + [c["stdout"] for c in cases] + [
        c["stderr"] for c in cases] + [str(root / "cases.json"), str(root / "results.json")]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    outside = [p for p in changed if not any(p == a or p.startswith(a + os.sep) for a in allowed)]
    for case, r in zip(cases, results):
        err = Path(case["stderr"]).read_text(errors="replace")
        where = f"case {case['name']} (seed {SEED}): litdata {' '.join(map(repr, case['argv']))} in {case['cwd']}"
        assert not r["timed_out"], f"{where}: still running after {LIMIT_S} s"
        assert r["rc"] in (0, 1, 2), f"{where}: exit {r['rc']}\n{err[-3000:]}"
        assert "Traceback" not in err, f"{where}: traceback\n{err[-3000:]}"
        print(f"{case['name']}: exit {r['rc']} in {r['seconds']} s")
    assert not outside, f"files written outside --out (seed {SEED}): {outside[:10]}"


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    make_images(root / "in" / "imgs")
    return root


def test_compile_and_templates_on_hostile_inputs(fuzz_root):
    rng = random.Random(SEED)
    inp, imgs = fuzz_root / "in", fuzz_root / "in" / "imgs"
    sources = {"array": inp / "-odd é [bold]x.json", "lines": inp / "l\x1b[31m.jsonl", "parquet": inp / "p.parquet"}
    for key, path in sources.items():
        write_source(rng, path, 25 if key != "parquet" else 6)
    cases = []
    for name, src, out in [("compile-array", sources["array"], "out[/b]"),
                           ("compile-lines", sources["lines"], "o\x1b[31m [INST]"),
                           ("compile-parquet", sources["parquet"], "outp")]:
        cwd = fuzz_root / name
        cwd.mkdir()
        # "out[/b]" is the folder "b]" inside "out[": the whole of it is the case's to write.
        cases.append({"name": name, "cwd": str(cwd), "allowed": [cwd / out.split("/")[0]],
                      "argv": ["compile", src, "--out", cwd / out, "--image-root", imgs, "--no-progress",
                               "--seq-len", "512", "--image-tokens", "4"]})
    cwd = fuzz_root / "templates"
    cwd.mkdir()
    cases.append({"name": "templates", "cwd": str(cwd), "allowed": [cwd / "t[x].parquet"],
                  "argv": ["templates", sources["array"], sources["lines"], "--out", cwd / "t[x].parquet", "--top", "5"]})
    run_batch(fuzz_root, cases)


def test_verify_and_inspect_on_hostile_and_corrupted_outputs(fuzz_root):
    rng = random.Random(SEED + 1)
    outs = [p for p in (fuzz_root / "compile-array" / "out[/b]", fuzz_root / "compile-lines" / "o\x1b[31m [INST]")
            if (p / "manifest.json").exists()][:1]
    if not outs:
        pytest.skip("the compile cases wrote no output to read (run with the compile test)")
    cwd = fuzz_root / "readers"
    cwd.mkdir()
    broken = cwd / "broken"
    shutil.copytree(outs[0], broken)
    manifest = broken / "manifest.json"
    manifest.write_bytes(corrupt(rng, manifest.read_bytes()) if rng.random() < 0.5 else b'{"shards": [{"name": 7}]}')
    shard = next(broken.glob("shard-*.tar"), None)
    if shard is not None:
        shard.write_bytes(shard.read_bytes()[: rng.randrange(1, shard.stat().st_size)])
    cases = []
    for i, folder in enumerate([*outs, broken]):
        cases += [
            {"name": f"verify-{i}", "cwd": str(cwd), "allowed": [], "argv": ["verify", folder]},
            {"name": f"inspect-{i}", "cwd": str(cwd), "allowed": [],
             "argv": ["inspect", folder, "--no-color", "--sequences", "3"]},
            {"name": f"inspect-doc-{i}", "cwd": str(cwd), "allowed": [],
             "argv": ["inspect", folder, "--document", rng.choice(["[/nope]", "r1\x1b[31m", "r0\x00"])]},
        ]
    cases.append({"name": "inspect-html", "cwd": str(cwd), "allowed": [cwd / "r[b].html"],
                  "argv": ["inspect", outs[0], "--html", cwd / "r[b].html", "--samples", "5"]})
    run_batch(fuzz_root, cases)
