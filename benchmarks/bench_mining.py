"""Template mining on a LLaVA-665K-like mix: detection precision/recall, time and peak memory of the pass.

    python3 -m benchmarks.bench_mining [--records 100000] [--quick] [--json] [--workdir DIR] [--seed 0]

The workload (benchmarks/workload.py) plants five task templates (two parametric) with known regular
expressions. A sentence is truly a template when one of them matches it in full; it is detected when its shape
or colon-prefix shape is in the mined template set. Precision and recall are reported over shapes (a mined
template shape is right when its example matches a planted pattern; a planted template is found when some
mined shape covers it) and over every user-turn sentence of the mix.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.world.generate import default_pool_size
from litdata.records import Conversation, Role
from litdata.spans import MiningSettings, mine_templates
from litdata.spans.sentences import SentenceSplitter
from litdata.spans.shapes import matching_template
from litdata.spans.table import TEMPLATE


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def conversations(path: Path):
    from litdata.read import read_sources

    return (r for r in read_sources([path]) if isinstance(r, Conversation))


def ensure_workload(n: int, workdir: Path, seed: int) -> tuple[Path, dict]:
    """Generate the mix in a child process, so its memory does not count towards the mining peak."""
    truth_path = workdir / "ground_truth.json"
    records = workdir / f"llava_{n}.jsonl"
    if not (
        records.exists()
        and truth_path.exists()
        and json.loads(truth_path.read_text())["seed"] == seed
        and json.loads(truth_path.read_text())["images"] == default_pool_size(n)
    ):
        # The full image pool matters: fewer pictures means the same questions about them recur more often.
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.workload",
            "--records",
            str(n),
            "--out",
            str(workdir),
            "--seed",
            str(seed),
            "--images",
            str(default_pool_size(n)),
            "--format",
            "jsonl",
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return records, json.loads(truth_path.read_text(encoding="utf-8"))


def sentence_scores(path: Path, shapes: frozenset[str], patterns: list[re.Pattern]) -> dict:
    """TP/FP/FN over every user-turn sentence, with a few examples of each kind of miss."""
    splitter = SentenceSplitter()
    tp = fp = fn = total = 0
    misses: dict[str, list[str]] = {"false_positive": [], "false_negative": []}
    batch: list[str] = []

    def flush() -> None:
        nonlocal tp, fp, fn, total
        for text, sents in zip(batch, splitter.split(batch)):
            for s in sents:
                sentence = text[s.start : s.end]
                truth = any(p.fullmatch(sentence) for p in patterns)
                pred = matching_template(sentence, shapes) is not None
                total += 1
                tp += truth and pred
                fp += pred and not truth
                fn += truth and not pred
                kind = "false_positive" if pred and not truth else "false_negative" if truth and not pred else ""
                if kind and len(misses[kind]) < 5:
                    misses[kind].append(sentence)
        batch.clear()

    for conv in conversations(path):
        batch.extend(t.text for t in conv.turns if t.role is Role.USER)
        if len(batch) >= 5000:
            flush()
    flush()
    return {"sentences": total, "tp": tp, "fp": fp, "fn": fn, **_pr(tp, fp, fn), "examples": misses}


def _pr(tp: int, fp: int, fn: int) -> dict:
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}


def run(n: int, workdir: Path, seed: int) -> dict:
    records, truth = ensure_workload(n, workdir, seed)
    patterns = {p["name"]: re.compile(p["pattern"]) for p in truth["template_patterns"]}
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    table = mine_templates(conversations(records), MiningSettings())
    mining_s = time.perf_counter() - t0
    rss_peak = peak_rss_mb()
    mined = table.frame.filter(table.frame["decision"] == TEMPLATE)
    right = [ex for ex in mined["example"] if any(p.fullmatch(ex) for p in patterns.values())]
    found = {name for name, p in patterns.items() if any(p.fullmatch(ex) for ex in mined["example"])}
    t1 = time.perf_counter()
    sentences = sentence_scores(records, table.template_shapes(), list(patterns.values()))
    return {
        "records": table.n_records,
        "mining_s": round(mining_s, 2),
        "records_per_s": round(table.n_records / mining_s),
        "peak_rss_mb": round(rss_peak, 1),
        "rss_before_mining_mb": round(rss_before, 1),
        "distinct_shapes_listed": len(table.frame),
        "template_shapes": mined["shape"].to_list(),
        # The margin of the rule: the rarest template against the most frequent non-template.
        "min_template_frac": mined["record_frac"].min(),
        "max_other_frac": table.frame.filter(table.frame["decision"] != TEMPLATE)["record_frac"].max(),
        "shapes": {
            "mined": len(mined),
            "right": len(right),
            "planted": len(patterns),
            "found": len(found),
            "precision": len(right) / len(mined) if len(mined) else 1.0,
            "recall": len(found) / len(patterns),
        },
        "sentence_level": sentences,
        "evaluation_s": round(time.perf_counter() - t1, 2),
        "settings": table.settings_dict(),
    }


def print_table(r: dict) -> None:
    s, w = r["shapes"], r["sentence_level"]
    rows = [
        ("records", f"{r['records']:,}"),
        ("mining pass (read + split + count)", f"{r['mining_s']:.1f} s ({r['records_per_s']:,} records/s)"),
        (
            "peak RSS (process, after mining)",
            f"{r['peak_rss_mb']:.0f} MB (before mining: {r['rss_before_mining_mb']:.0f} MB)",
        ),
        (
            "record frac: rarest template",
            f"{r['min_template_frac']:.4f} (most frequent other: {r['max_other_frac']:.4f})",
        ),
        ("shapes: precision", f"{s['precision']:.3f} ({s['right']}/{s['mined']} mined template shapes right)"),
        ("shapes: recall", f"{s['recall']:.3f} ({s['found']}/{s['planted']} planted templates found)"),
        ("sentences: precision", f"{w['precision']:.4f} (fp {w['fp']:,})"),
        ("sentences: recall", f"{w['recall']:.4f} (fn {w['fn']:,} of {w['tp'] + w['fn']:,} template sentences)"),
        ("user-turn sentences", f"{w['sentences']:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("template shapes:")
    for shape in r["template_shapes"]:
        print(f"  {shape}")
    for kind, examples in w["examples"].items():
        for ex in examples:
            print(f"  {kind}: {ex}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.bench_mining", description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10k records (under a minute)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--workdir", type=Path, help="where the workload is written (and reused); default a temp dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = 10_000 if args.quick else args.records
    with tempfile.TemporaryDirectory(prefix="bench_mining_") as tmp:
        result = run(n, args.workdir or Path(tmp), args.seed)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
