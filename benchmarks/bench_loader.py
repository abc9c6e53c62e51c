"""Loader throughput: packed sequences/s and tokens/s from shards into batches.

    python3 benchmarks/bench_loader.py --quick            # builds fixture shards (seq_len 4096) in a temp dir
    python3 benchmarks/bench_loader.py --data shards/ --json

For each path (text; text + image decoding) and each `--workers` count it times one pass over the shards
through `build_loader`, and reports real (non-padding) tokens/s overall and per loader process, and tokens per CPU-second of
the loading process(es) (main process for 0 workers, the workers otherwise), which a busy machine does not
distort. It also
times sha256 verification against a load without it (the `verify_checksums` default is on when that
costs < 10% of the load time).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from adapters.megatron import shards as shard_io
from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import ImageSpec
from adapters.megatron.loader import build_loader


def one_pass(data: str, *, workers: int, images: bool, seq_len: int, mbs: int, verify: bool) -> dict:
    shard_io._VERIFIED.clear()  # hash again in every run, as a fresh process would
    ds = PackedShardDataset(data, seed=0, image_spec=ImageSpec() if images else None, verify_checksums=verify)
    loader = build_loader(ds, micro_batch_size=mbs, seq_len=seq_len, num_workers=workers)
    start, cpu0, child0 = time.perf_counter(), time.process_time(), _children_cpu()
    first = None
    sequences = tokens = images_seen = 0
    for batch in loader:
        first = first or time.perf_counter()
        real = batch["document_ids"] >= 0
        sequences += int(real.any(dim=1).sum())
        tokens += int(real.sum())
        images_seen += int(batch["num_images"].sum()) if images else 0
    seconds = time.perf_counter() - start
    del loader  # joins the workers, so that their CPU time is counted
    # CPU seconds of the process(es) that read and collate: the main one, or the workers. Unlike wall time
    # this does not depend on what else runs on the machine.
    cpu = (_children_cpu() - child0) if workers else (time.process_time() - cpu0)
    procs = max(1, workers)
    return {
        "path": "images" if images else "text",
        "workers": workers,
        "verify_checksums": verify,
        "sequences": sequences,
        "tokens": tokens,
        "images": images_seen,
        "seconds": round(seconds, 3),
        "first_batch_s": round((first or start) - start, 3),  # worker start-up and the first shard's hash
        "sequences_per_s": round(sequences / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
        "tokens_per_s_per_process": round(tokens / seconds / procs),
        "loader_cpu_s": round(cpu, 3),
        "tokens_per_cpu_s": round(tokens / cpu) if cpu > 0 else None,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_fixture(out: Path, *, seq_len: int, quick: bool, images: bool) -> str:
    from shard_fixtures import write_shards

    docs = (600 if quick else 3000) if not images else (40 if quick else 400)
    write_shards(
        out,
        documents=docs,
        seq_len=seq_len,
        images=images,
        image_tokens=576,
        image_size=(320, 240),
        sequences_per_shard=16,
        max_doc_len=seq_len // 3,
    )
    return str(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="compiled shards (folder with manifest.json); default: build fixture shards")
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-images", action="store_true", help="skip the image-decoding path")
    ap.add_argument("--quick", action="store_true", help="small fixture; under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"text": args.data}
        if args.data:
            paths["images"] = None if args.no_images else args.data
        else:
            paths["text"] = build_fixture(Path(tmp) / "text", seq_len=args.seq_len, quick=args.quick, images=False)
            if not args.no_images:
                paths["images"] = build_fixture(Path(tmp) / "img", seq_len=args.seq_len, quick=args.quick, images=True)
        results = []
        for name, data in paths.items():
            if data is None:
                continue
            for workers in args.workers:
                results.append(
                    one_pass(
                        data,
                        workers=workers,
                        images=name == "images",
                        seq_len=args.seq_len,
                        mbs=args.micro_batch_size,
                        verify=True,
                    )
                )
        unverified = one_pass(
            paths["text"], workers=0, images=False, seq_len=args.seq_len, mbs=args.micro_batch_size, verify=False
        )
        verified = next(r for r in results if r["path"] == "text" and r["workers"] == 0) if 0 in args.workers else None
        overhead = (verified["loader_cpu_s"] / unverified["loader_cpu_s"] - 1) if verified else None
    report = {
        "seq_len": args.seq_len,
        "micro_batch_size": args.micro_batch_size,
        "results": results,
        "checksum_overhead_text_w0": None if overhead is None else round(overhead, 3),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(
        f"{'path':<7} {'workers':>7} {'seqs':>6} {'seq/s':>8} {'tokens/s':>11} {'tok/s/proc':>11} "
        f"{'images':>6} {'1st batch s':>11} {'tok/cpu-s':>11}"
    )
    for r in results:
        print(
            f"{r['path']:<7} {r['workers']:>7} {r['sequences']:>6} {r['sequences_per_s']:>8} "
            f"{r['tokens_per_s']:>11,} {r['tokens_per_s_per_process']:>11,} {r['images']:>6} "
            f"{r['first_batch_s']:>11} {r['tokens_per_cpu_s'] or 0:>11,}"
        )
    if overhead is not None:
        print(f"sha256 verification costs {overhead:+.1%} of the text loader's CPU time (workers=0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
