"""Packing efficiency (real tokens / capacity) and packing time (issue 5, item 2).

    python3 -m benchmarks.bench_packing [--quick] [--json FILE]

Document lengths come from compiling a sample of the LLaVA-665K-shaped workload with litdata (at seq_len 8192,
so that nothing is dropped) and reading each document's text tokens and image count from the shards; the
benchmark then draws `--docs` documents from that distribution (seeded, with replacement) and packs them with
576 tokens per image at each seq_len, with every method on the same documents.

`--image-counts anyres` is the variable-count workload: each image gets a size drawn from `draw_image_sizes` and
the count LLaVA-NeXT's anyres processor gives that size with LLaVA-OneVision's vision tower (SigLIP 384 px, patch
14: 729 tokens per crop; base image, unpadded grid features and one newline per row; grids of up to 4 crops).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

from benchmarks.baselines.packing import (
    check_bins,
    efficiency,
    first_fit_decreasing,
    greedy_knapsack,
    greedy_knapsack_buffered,
    no_packing,
    subset_sum_fill,
)
from benchmarks.baselines.packing_bound import min_sequences_lower_bound
from benchmarks.report import Table, add_common_arguments, run_benchmark
from litdata.shards import reader as shard_reader

TARGET_4096 = 0.99


def sample_lengths(records: int, work: Path, tokenizer: str, seed: int, compiled: Path | None = None) -> np.ndarray:
    """[(text tokens, images)] of every document of a litdata compile of `records` workload records (or of the
    existing compile `compiled`, to skip that step)."""
    from benchmarks.workload import write_workload
    from litdata.cli import main

    out = compiled or work / "compiled"
    if compiled is None:
        wl = write_workload(records, work / "workload", seed, images=min(2000, max(10, records // 10)))
        argv = ["compile", str(wl.records), "--image-root", str(wl.image_root), "--out", str(out), "--tokenizer",
                tokenizer, "--seq-len", "8192", "--no-progress", "--overwrite"]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            if main(argv) != 0:
                raise RuntimeError(f"litdata compile failed: {' '.join(argv)}")
    rows = []
    for shard in sorted(out.glob("*.tar")):  # each document's metadata, through the one sample reader
        with tarfile.open(shard) as tar:
            for _key, members in shard_reader.tar_samples(tar):
                docs = shard_reader.load_json(tar.extractfile(members["json"]).read(), documents=True)
                rows += [(d["tokens"], d["images"]) for d in docs]
    return np.asarray(rows, dtype=np.int64)


def onevision_rule():
    """LLaVA-NeXT anyres counting with LLaVA-OneVision's SigLIP-384 tower, grids of 1 to 4 crops of 384 px."""
    from litdata.images.tokens.hf import ProcessorRule

    grids = tuple((384 * r, 384 * c) for r in range(1, 5) for c in range(1, 5) if r * c <= 4)
    return ProcessorRule(type="llava_next", path="<bench>", patch_size=14, crop=(384, 384), pinpoints=grids)


def draw_image_sizes(n: int, rng: np.random.Generator) -> np.ndarray:
    """(width, height) of n images: the long side log-uniform in [256, 2048] px, the aspect ratio log-uniform in
    [1/3, 3] (photos, charts, screenshots and documents; a synthetic stand-in, not OneVision's measured sizes)."""
    long_side = np.exp(rng.uniform(np.log(256), np.log(2048), n))
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3), n))
    w = np.where(aspect >= 1, long_side, long_side * aspect)
    h = np.where(aspect >= 1, long_side / aspect, long_side)
    return np.stack([np.maximum(w, 1), np.maximum(h, 1)], axis=1).astype(np.int64)


def image_counts(images: np.ndarray, mode: str, fixed: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Per document, each image's count: `fixed` each, or (anyres) the OneVision-style count of a drawn size."""
    if mode == "fixed":
        return [(fixed,) * int(k) for k in images]
    rule, sizes = onevision_rule(), draw_image_sizes(int(images.sum()), rng)
    flat = [rule.count(int(w), int(h)).tokens for w, h in sizes]
    ends = np.cumsum(images)
    return [tuple(flat[e - int(k):e]) for k, e in zip(images, ends)]


def litdata_pack(tokens: np.ndarray, images: np.ndarray, seq_len: int, image_tokens: int,
                 algorithm: str = "fill", window: int = 8192,
                 counts: list[tuple[int, ...]] | None = None) -> list[list[int]]:
    """litdata's packer on stand-in Documents of the right lengths (zero-stride token arrays, no memory)."""
    from litdata.config import PackSettings
    from litdata.pack.packer import make_packer
    from litdata.records import Document, Provenance
    from litdata.records.document import ImageBlob

    blob = ImageBlob(ext="jpg", data=b"")
    zero_i, zero_u, zero_f = np.int32(0), np.uint8(0), np.float32(0)
    docs = [Document(provenance=Provenance(source="bench", index=i, id=None),
                     tokens=np.broadcast_to(zero_i, (int(n),)), classes=np.broadcast_to(zero_u, (int(n),)),
                     weights=np.broadcast_to(zero_f, (int(n),)), images=(blob,) * int(k),
                     image_counts=counts[i] if counts is not None else ())
            for i, (n, k) in enumerate(zip(tokens, images))]  # fmt: skip
    packer = make_packer(PackSettings(seq_len=seq_len, image_tokens=image_tokens, algorithm=algorithm, window=window))
    t0 = time.perf_counter()
    seqs = list(packer.run(docs))
    litdata_pack.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    return [[d.provenance.index for d in s.docs] for s in seqs]


def measure(args: argparse.Namespace, work: Path) -> list[Table]:
    sample = sample_lengths(args.sample_records, work, args.tokenizer, args.seed, args.lengths_from)
    rng = np.random.default_rng(args.seed)
    drawn = sample[rng.integers(0, len(sample), size=args.docs)]
    tokens, images = drawn[:, 0], drawn[:, 1]
    counts = image_counts(images, args.image_counts, args.image_tokens, rng)
    expanded = tokens - images + np.array([sum(c) for c in counts], dtype=np.int64)
    per_image = (f"{args.image_tokens} tokens per image" if args.image_counts == "fixed" else
                 "per-image counts of LLaVA-NeXT anyres with a SigLIP-384 tower (LLaVA-OneVision-like sizes)")
    table = Table(title=f"packing efficiency, {args.docs:,} documents drawn from a {len(sample):,}-document compile, "
                        f"{per_image}",
                  columns=["seq_len", "method", "sequences", "efficiency", "seconds", "target", "met"])  # fmt: skip
    for seq_len in args.seq_lens:
        keep = np.flatnonzero(expanded <= seq_len)
        lengths = expanded[keep].tolist()
        methods = [("litdata --packing fill (default), window 8192, carry 256", ("fill", 8192)),
                   ("litdata --packing best-fit, window 8192, carry 256", ("best-fit", 8192))]
        if not args.skip_lp:
            methods += [("litdata --packing lp, window 8192 (default), carry 256", ("lp", 8192)),
                        ("litdata --packing lp --pack-window 65536, carry 256", ("lp", 65536))]
        methods += [(f"greedy knapsack per buffer of {b} (Megatron-Energon buffer / LLaMA-Factory map batch)",
                     lambda L, c, b=b: greedy_knapsack_buffered(L, c, b)) for b in args.buffers]  # fmt: skip
        if len(lengths) <= args.whole_knapsack_max:
            methods.append(("greedy knapsack, whole dataset at once", greedy_knapsack))
            methods.append(("litdata's fill over the whole dataset at once (no windows)", subset_sum_fill))
        methods += [("first-fit decreasing, whole dataset at once", first_fit_decreasing),
                    ("no packing (pad every record)", no_packing)]  # fmt: skip
        for name, fn in methods:
            if isinstance(fn, tuple):  # litdata itself; document indices are positions in `lengths`
                bins = litdata_pack(tokens[keep], images[keep], seq_len, args.image_tokens, *fn,
                                    counts=[counts[i] for i in keep])
                secs = litdata_pack.seconds  # type: ignore[attr-defined]
            else:
                t0 = time.perf_counter()
                bins = fn(list(lengths), seq_len)
                secs = time.perf_counter() - t0
            check_bins(lengths, bins, seq_len)
            eff = efficiency(lengths, bins, seq_len)
            table.add(
                seq_len=seq_len,
                method=name,
                sequences=len(bins),
                efficiency=round(eff, 5),
                seconds=secs,
                target=f">= {TARGET_4096}" if seq_len == 4096 and isinstance(fn, tuple) else None,
                met=(eff >= TARGET_4096) if seq_len == 4096 and isinstance(fn, tuple) else None,
            )
        # A proven lower bound on the sequences of ANY packing of these documents, so an upper bound on the efficiency
        # of every method above (and of any other).
        # With a quantum q, the bound is that of lengths // q in sequences of seq_len // q: every packing of the
        # real lengths is one of those too, so it is still a proven lower bound (a little weaker), and the LP has
        # far fewer distinct lengths (per-image counts make about one per document).
        q = args.bound_quantum or (32 if args.image_counts == "anyres" else 1)
        bound = min_sequences_lower_bound(expanded[keep] // q, seq_len // q)
        volume = -(-int(expanded[keep].sum()) // seq_len)  # rounded lengths can make the LP's bound the weaker one
        sequences = max(bound.sequences, volume, 1)
        upper = int(expanded[keep].sum()) / (sequences * seq_len)
        table.add(seq_len=seq_len, method="upper bound on efficiency, any packer (cutting-stock LP)",
                  sequences=sequences, efficiency=round(upper, 5), seconds=bound.seconds)  # fmt: skip
        table.notes.append(f"seq_len {seq_len} bound{f' (lengths rounded down to multiples of {q})' if q > 1 else ''}: "
                           f"at least {sequences:,} sequences, so at most {upper:.3%} "
                           f"(LP optimum {bound.lp_value:,.2f}, volume bound {bound.volume:,}; {bound.columns:,} "
                           f"patterns, {bound.iterations} pricing rounds)")  # fmt: skip
        dropped = len(expanded) - len(keep)
        if dropped:
            table.notes.append(f"seq_len {seq_len}: {dropped:,} documents longer than seq_len left out of every method")
    table.notes += [
        (
            "efficiency = real tokens (images expanded) / (sequences x seq_len); every method packs the same documents, "
            "and every packing is checked (each document exactly once, no sequence over seq_len)."
        ),
        "seconds: packing only (litdata: the packer's run over the documents; no tokenization or writing).",
        (
            "upper bound: real tokens / (a proven lower bound on the sequences of any packing x seq_len); the bound is "
            "the Gilmore-Gomory cutting-stock LP relaxation (benchmarks/baselines/packing_bound.py, exact lengths unless a "
            "note says they were rounded down), rounded up, or the volume bound where that is higher; seconds: column "
            "generation."
        ),
        (
            f"length sample: text-token and image counts of every document of a litdata compile of "
            f"{args.sample_records:,} workload records (demo tokenizer), drawn with replacement (seed {args.seed})."
        ),
    ]
    dist = Table(
        title="the packed length distribution (images expanded)",
        columns=["documents", "images", "share", "mean", "p10", "p50", "p90", "max"],
    )
    for label, sel in [("all", np.ones(len(expanded), bool)), ("with images", images > 0), ("text only", images == 0)]:
        x = expanded[sel]
        if len(x):
            q = np.percentile(x, [10, 50, 90])
            dist.add(
                documents=label,
                images=int(images[sel].sum()),
                share=round(len(x) / len(expanded), 4),
                mean=float(x.mean()),
                p10=int(q[0]),
                p50=int(q[1]),
                p90=int(q[2]),
                max=int(x.max()),
            )
    return [table, dist]


def main(argv: list[str] | None = None) -> int:
    from litdata.demo import DEMO_TOKENIZER_DIR

    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.bench_packing", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=None, help="documents to pack (default 665000; --quick 20000)")
    ap.add_argument(
        "--sample-records",
        type=int,
        default=None,
        help="records compiled for the length sample (default 5000; --quick 1000)",
    )
    ap.add_argument("--seq-lens", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--image-tokens", type=int, default=576)
    ap.add_argument("--image-counts", choices=("fixed", "anyres"), default="fixed",
                    help="fixed: --image-tokens per image; anyres: a count per image from its drawn size "
                         "(LLaVA-NeXT anyres, SigLIP-384, as LLaVA-OneVision)")
    ap.add_argument("--buffers", type=int, nargs="+", default=[1000, 8192], help="greedy knapsack buffer sizes")
    ap.add_argument(
        "--whole-knapsack-max",
        type=int,
        default=100_000,
        help="run whole-dataset greedy knapsack (quadratic list pops) and the subset-sum reference only up to "
        "this many documents",
    )
    ap.add_argument("--tokenizer", default=str(DEMO_TOKENIZER_DIR))
    ap.add_argument("--skip-lp", action="store_true", help="leave out --packing lp (slow where lengths are many)")
    ap.add_argument("--bound-quantum", type=int, default=None,
                    help="round lengths down to multiples of this for the LP bound (default 1; 32 with anyres)")
    ap.add_argument("--lengths-from", type=Path, help="take the length sample from this existing compile of the "
                                                      "workload (at seq_len 8192) instead of compiling one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    add_common_arguments(ap)
    args = ap.parse_args(argv)
    args.docs = args.docs or (20_000 if args.quick else 665_000)
    args.sample_records = args.sample_records or (1000 if args.quick else 5000)
    return run_benchmark("bench_packing", args, measure)


if __name__ == "__main__":
    sys.exit(main())
