"""Peak memory (RSS) of a compile as the input grows (issue 5, item 3): it must stay flat.

    python3 -m benchmarks.bench_memory [--sizes N ...] [--quick] [--json FILE]

Each size gets its own workload and a fresh `python3 -m litdata compile` subprocess. Two figures per run:
the kernel's peak RSS of the compile process (os.wait4's ru_maxrss: the largest single process, workers
included as they are waited for) and the peak of the summed RSS of the process and its workers, polled
every 0.1 s with psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.report import Table, add_common_arguments, run_benchmark
from litdata.shards.manifest import Manifest

FLAT_LIMIT = 1.3  # peak at the largest size over peak at the smallest: "flat" if at most this


def _poll_tree(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        total = 0
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += p.memory_info().rss
        peak[0] = max(peak[0], total)
        stop.wait(0.1)


def compile_peak(src: Path, image_root: Path, out: Path, tokenizer: str, workers: int, packing: str = "fill",
                 first_pass_memory: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "litdata", "compile", str(src), "--image-root", str(image_root), "--out", str(out),
           "--tokenizer", tokenizer, "--workers", str(workers), "--packing", packing, "--no-progress",
           "--overwrite"]  # fmt: skip
    if first_pass_memory is not None:
        cmd += ["--first-pass-memory", first_pass_memory]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stop, peak = threading.Event(), [0]
    poller = threading.Thread(target=_poll_tree, args=(proc.pid, stop, peak), daemon=True)
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    poller.join()
    secs = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"compile exited {proc.returncode}: {' '.join(cmd)}\n{err[-2000:]}")
    return {"seconds": secs, "maxrss_mib": usage.ru_maxrss / 1024, "tree_peak_mib": peak[0] / 2**20}


def measure(args: argparse.Namespace, work: Path) -> list[Table]:
    from benchmarks.workload import write_workload

    table = Table(title=f"peak RSS of `litdata compile --workers {args.workers} --packing {args.packing}` (images path)",
                  columns=["records", "input MB", "seconds", "records/s", "peak RSS MiB (ru_maxrss)",
                           "peak RSS MiB (process tree)", "documents", "sequences"])  # fmt: skip
    peaks = []
    for n in args.sizes:
        wdir = work / f"wl_{n}"
        wl = write_workload(n, wdir, args.seed, images=args.images)
        out = work / f"out_{n}"
        r = compile_peak(wl.records, wl.image_root, out, args.tokenizer, args.workers, args.packing,
                         args.first_pass_memory)
        counts = Manifest.read(out, compiled=True).counts
        table.add(
            records=n,
            **{
                "input MB": wl.records.stat().st_size / 1e6,
                "seconds": r["seconds"],
                "records/s": n / r["seconds"],
                "peak RSS MiB (ru_maxrss)": r["maxrss_mib"],
                "peak RSS MiB (process tree)": r["tree_peak_mib"],
                "documents": counts.documents_written,
                "sequences": counts.sequences,
            },
        )
        peaks.append(r["tree_peak_mib"])
        print(f"{n:,} records: {r['seconds']:.0f} s, peak {r['tree_peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
        if not args.keep:
            shutil.rmtree(wdir, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    growth = peaks[-1] / peaks[0]
    notes = [
        (
            f"growth of the process-tree peak from {args.sizes[0]:,} to {args.sizes[-1]:,} records: x{growth:.2f} "
            f"({'within' if growth <= FLAT_LIMIT else 'OVER'} the x{FLAT_LIMIT} used here as 'flat')."
        )
    ]
    if len(peaks) >= 2 and args.sizes[-1] > args.sizes[-2]:
        per_rec = (peaks[-1] - peaks[-2]) * 2**20 / (args.sizes[-1] - args.sizes[-2])
        notes.append(
            f"marginal growth between the two largest sizes: {per_rec / 1024:.2f} KiB per record "
            "(0 when memory is bounded; a bounded cache still filling up also shows here)."
        )
    notes.append(
        f"each size: a fresh workload (seed {args.seed}, {args.images} pool images) and a fresh compile subprocess; "
        "workload generation is not timed."
    )
    table.notes += notes
    return [table]


def main(argv: list[str] | None = None) -> int:
    from litdata.demo import DEMO_TOKENIZER_DIR

    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.bench_memory", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=None, help="default 10000 100000 665000; --quick 3000 15000"
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--packing", default="fill", help="the compile's --packing")
    ap.add_argument("--first-pass-memory", metavar="SIZE", help="the compile's --first-pass-memory (default: its own)")
    ap.add_argument("--images", type=int, default=2000, help="pictures in the workload's shared pool")
    ap.add_argument("--tokenizer", default=str(DEMO_TOKENIZER_DIR))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep each workload and output")
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    args.sizes = sorted(args.sizes or ([3_000, 15_000] if args.quick else [10_000, 100_000, 665_000]))
    return run_benchmark("bench_memory", args, measure)


if __name__ == "__main__":
    sys.exit(main())
