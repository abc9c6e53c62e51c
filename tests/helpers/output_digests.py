"""Digests of a compile's output folder, for the byte-identity test (tests/shards/test_output_bytes_unchanged.py).

Shards, rejects, templates and the audit are hashed as written. The manifest is hashed after the two things in it
that depend on the machine rather than on the inputs and options are made neutral: absolute paths (a clone's
location) become their file names, and the installed library versions are dropped.

Regenerate the checked-in digests only when a change to the bytes is intended:
    python -m tests.output_digests --write
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "output_digests.json"
REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "litdata" / "demo" / "data"
DEMO_TOKENIZER = REPO / "litdata" / "demo" / "tokenizer"
WORKLOAD_RECORDS = 1500


def neutral(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: neutral(v) for k, v in value.items() if k != "versions"}
    if isinstance(value, list):
        return [neutral(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    return value


def digests(out: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for p in sorted([*out.iterdir(), *(out / ".nv-meta").glob("*")]):  # .litdata-run.json is bookkeeping, not output
        if p.name.startswith(".") or not p.is_file():
            continue
        data = p.read_bytes()
        if p.name == "manifest.json":
            data = json.dumps(neutral(json.loads(data)), sort_keys=True).encode()
        found[str(p.relative_to(out))] = hashlib.sha256(data).hexdigest()
    return found


def cases(work: Path) -> dict[str, list[str]]:
    """Each case's `litdata compile` arguments (without --out), run in `work`. Sources are given by relative paths
    because each document's provenance records its source path as given."""
    from benchmarks.workload import write_workload

    write_workload(WORKLOAD_RECORDS, work / "workload", seed=7, images=60, fmt="json")
    shutil.copytree(DEMO_DATA, work / "demo")
    demo = ["demo/llava_demo.json", "demo/extra.jsonl", "--image-root", "demo/images", "--tokenizer", str(DEMO_TOKENIZER)]
    return {
        "demo": demo,
        "demo_vit_lp_tiles_truncate": demo + ["--mode", "vit", "--packing", "lp", "--overflow", "truncate",
                                               "--seq-len", "1024", "--image-tokens", "tiles:tile=336,max=6,per_tile=64",
                                               "--max-shard-sequences", "40"],
        "workload": [f"workload/llava_{WORKLOAD_RECORDS}.json", "--image-root", "workload/images", "--tokenizer", str(DEMO_TOKENIZER),
                     "--workers", "2", "--packing", "best-fit", "--weight", "instruction=0.5"],
    }


def compile_all(work: Path) -> dict[str, dict[str, str]]:
    results = {}
    for name, args in cases(work).items():
        out = work / f"out_{name}"
        proc = subprocess.run([sys.executable, "-m", "litdata", "compile", *args, "--out", str(out), "--no-progress"],
                              capture_output=True, text=True, cwd=work, env={**os.environ, "PYTHONPATH": str(REPO)})
        if proc.returncode not in (0, 1):  # 1: some records rejected, which the demo plants on purpose
            raise RuntimeError(f"{name}: litdata compile exited {proc.returncode}: {proc.stderr[-2000:]}")
        results[name] = digests(out)
    return results


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        got = compile_all(Path(tmp))
    if "--write" in sys.argv:
        FIXTURE.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    print(json.dumps(got, indent=1, sort_keys=True))
