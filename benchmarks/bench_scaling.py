"""Compile throughput by engine and worker count (issue 15): records/s of `litdata compile`, end to end.

    python3 -m benchmarks.bench_scaling [--records N] [--workers 1 2 ...] [--partition-size SIZE]

The same JSONL workload (benchmarks/workload.py, with images) is compiled with the local engine and with
`--engine ray` (a local Ray instance started by the compile, so its start-up is counted) for each worker count;
every output is checked to be byte-identical to the first one. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path


def compile_once(src: Path, image_root: Path, out: Path, engine: str, workers: int, partition_size: str) -> float:
    from litdata.cli import main
    from litdata.demo import DEMO_TOKENIZER_DIR

    argv = ["compile", str(src), "--image-root", str(image_root), "--out", str(out), "--tokenizer",
            str(DEMO_TOKENIZER_DIR), "--workers", str(workers), "--no-progress", "--engine", engine]
    if engine == "ray":
        argv += ["--partition-size", partition_size]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"litdata {' '.join(argv)} exited {rc}")
    return seconds


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.workload import write_workload

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--partition-size", default="256KiB", help="--partition-size for the Ray runs")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        work = Path(tmp)
        wl = write_workload(args.records, work / "workload", 0, images=min(2000, max(10, args.records // 10)),
                            fmt="jsonl")
        load = os.getloadavg()[0]
        rows, first = [], None
        for engine in ("local", "ray"):
            for w in args.workers:
                out = work / f"{engine}-{w}"
                seconds = compile_once(wl.records, wl.image_root, out, engine, w, args.partition_size)
                got = outputs(out)
                first = first or got
                rows.append((engine, w, seconds, args.records / seconds, got == first))
        print(f"### compile throughput by engine, {args.records:,} JSONL records with images "
              f"(load average {load:.1f} at the start)\n")
        print("| engine | workers | seconds | records/s | bytes identical to the first row |")
        print("|---|---|---|---|---|")
        for engine, w, seconds, rate, same in rows:
            print(f"| {engine} | {w} | {seconds:.1f} | {rate:,.0f} | {'yes' if same else 'NO'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
