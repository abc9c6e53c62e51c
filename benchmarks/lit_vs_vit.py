"""LIT vs VIT in miniature, measured through litdata: does supervising the instruction make a model look?

    python -m benchmarks.lit_vs_vit --quick            # this 2-core CPU machine, under 30 minutes
    python -m benchmarks.lit_vs_vit                    # the full size (meant for one GPU)

The data are drawn scenes (one coloured shape on a plain canvas) with three question kinds: "What color is the
circle?", "What shape is the red object?" and POPE-style "Is there a red circle in the image?". The training set
carries a strong language prior, as VQA-CP does: per question kind one answer dominates (red, circle, yes; 75%).
The held-out set uses new scenes (none shared with training) with balanced answers, so answering from the prior
scores at chance and only looking at the image helps. Every question ends with LLaVA-665K's task template
"Answer the question using a single word or phrase.", which litdata's template mining must find.

One compile; then `llava-tiny` is trained from scratch (Megatron trainer) in three modes with equal steps and
seeds: `vit` (answers only), `lit` (question + answer, the template masked) and `lit-templates` (lit with
the template supervised too, `--weight task_template=1`). Each checkpoint is scored by `adapters.megatron.evaluate`
on the held-out set: accuracy, accuracy with a blank image, visual contribution (their difference), POPE accuracy
and yes-rate, and the median step time. Prints one table (mean and sample standard deviation over seeds) and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from litdata.shards.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
COLORS = ("red", "blue", "green", "yellow")
KINDS = ("circle", "square", "triangle", "star")
PRIOR = {"color": "red", "shape": "circle", "exists": "yes"}
PRIOR_FRACTION = 0.75
TEMPLATE = "Answer the question using a single word or phrase."
CANVAS = 64
SIDES = (30, 36, 42)
# This world has only 16 distinct questions per kind, so each one is as frequent as a task template would be in
# LLaVA-665K (about 6% of records); the mining threshold is raised so that only the appended template is mined.
TEMPLATE_MIN_FRAC = 0.3
MODES = {"vit": ["--mode", "vit"], "lit": ["--mode", "lit"],
         "lit-templates": ["--mode", "lit", "--weight", "task_template=1"]}


@dataclass(frozen=True, kw_only=True)
class SceneKey:
    """What makes a scene: the shape, its colour and its geometry (the picture is a pure function of this)."""

    kind: str
    color: str
    side: int
    x0: int
    y0: int


@dataclass(frozen=True, kw_only=True)
class Item:
    id: str
    scene: SceneKey
    kind: str  # color | shape | exists
    question: str
    answer: str
    candidates: tuple[str, ...]


def draw(key: SceneKey) -> bytes:
    import io

    from benchmarks.world.scene import COLORS as RGB
    from benchmarks.world.scene import Scene, Shape, draw_scene

    box = (key.x0, key.y0, key.x0 + key.side - 1, key.y0 + key.side - 1)
    scene = Scene(style="shapes", width=CANVAS, height=CANVAS, background="white",
                  shapes=(Shape(kind=key.kind, color=key.color, size="large", cell=(1, 1), box=box),))
    assert key.color in RGB
    buf = io.BytesIO()
    draw_scene(scene).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _scene(rng: random.Random, kind: str, color: str, taken: set[SceneKey]) -> SceneKey:
    while True:
        side = rng.choice(SIDES)
        key = SceneKey(kind=kind, color=color, side=side, x0=rng.randint(0, CANVAS - side),
                       y0=rng.randint(0, CANVAS - side))
        if key not in taken:
            return key


def _answer(rng: random.Random, options: tuple[str, ...], prior: str | None) -> str:
    if prior is not None and rng.random() < PRIOR_FRACTION:
        return prior
    return rng.choice([o for o in options if o != prior] if prior is not None else list(options))


def generate(n: int, *, split: str, seed: int, biased: bool, avoid: set[SceneKey] = frozenset()) -> list[Item]:
    """n questions, a third of each kind; `biased` gives each kind its dominant answer, else answers are balanced.
    No scene of `avoid` (the training scenes) is used, and no scene is used twice."""
    rng = random.Random(f"{split}-{seed}")
    taken: set[SceneKey] = set(avoid)
    items = []
    for i in range(n):
        kind = ("color", "shape", "exists")[i % 3]
        prior = PRIOR[kind] if biased else None
        if kind == "color":
            shape, color = rng.choice(KINDS), _answer(rng, COLORS, prior)
            q, a, cands = f"What color is the {shape}?", color, COLORS
        elif kind == "shape":
            shape, color = _answer(rng, KINDS, prior), rng.choice(COLORS)
            q, a, cands = f"What shape is the {color} object?", shape, KINDS
        else:
            shape, color = rng.choice(KINDS), rng.choice(COLORS)
            a = _answer(rng, ("yes", "no"), prior) if biased else rng.choice(("yes", "no"))
            ask_color, ask_shape = color, shape
            if a == "no":  # POPE's adversarial negatives: one attribute differs from what is there
                if rng.random() < 0.5:
                    ask_color = rng.choice([c for c in COLORS if c != color])
                else:
                    ask_shape = rng.choice([k for k in KINDS if k != shape])
            q, cands = f"Is there a {ask_color} {ask_shape} in the image?", ("yes", "no")
        key = _scene(rng, shape, color, taken)
        taken.add(key)
        items.append(Item(id=f"{split}-{i:06d}", scene=key, kind=kind, question=f"{q}\n{TEMPLATE}", answer=a,
                          candidates=cands))
    return items


def write_split(items: list[Item], root: Path, split: str) -> None:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    for it in items:
        (root / "images" / split / f"{it.id}.png").write_bytes(draw(it.scene))


def training_records(items: list[Item], split: str) -> list[dict]:
    return [{"id": it.id, "image": f"{split}/{it.id}.png",
             "conversations": [{"from": "human", "value": f"<image>\n{it.question}"},
                               {"from": "gpt", "value": it.answer}]} for it in items]


def eval_questions(items: list[Item], split: str) -> list[dict]:
    return [{"id": it.id, "image": f"{split}/{it.id}.png", "question": it.question, "candidates": list(it.candidates),
             "answer": it.answer, "kind": it.kind} for it in items]


@dataclass(frozen=True, kw_only=True)
class Size:
    train: int
    held_out: int
    steps: int
    seeds: int
    micro_batch: int
    lr: float


QUICK = Size(train=2400, held_out=240, steps=400, seeds=3, micro_batch=4, lr=2e-3)
FULL = Size(train=30000, held_out=1500, steps=3000, seeds=3, micro_batch=16, lr=1e-3)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], log: Path) -> None:
    # Each run is a world of one; a port of its own, since an inherited MASTER_PORT may be the caller's own.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "MASTER_PORT": str(_free_port())}
    with open(log, "w") as fh:
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode}); see {log}")


def prepare(root: Path, size: Size, seed: int) -> Path:
    """Draw both splits, write train.json / eval.json and compile the training set once."""
    train = generate(size.train, split="train", seed=seed, biased=True)
    held = generate(size.held_out, split="eval", seed=seed, biased=False, avoid={it.scene for it in train})
    write_split(train, root, "train")
    write_split(held, root, "eval")
    (root / "train.json").write_text(json.dumps(training_records(train, "train")))
    (root / "eval.json").write_text(json.dumps(eval_questions(held, "eval")))
    from litdata.cli import main as litdata_main

    out = root / "compiled"
    rc = litdata_main(["compile", str(root / "train.json"), "--image-root", str(root / "images"), "--out", str(out),
                       "--seq-len", "256", "--image-tokens", "16", "--template-min-frac", str(TEMPLATE_MIN_FRAC),
                       "--no-progress", "--overwrite"])
    if rc != 0:
        raise RuntimeError("compiling the training set failed")
    import polars as pl

    mined = pl.read_parquet(out / "templates.parquet").filter(pl.col("decision") == "template")["example"].to_list()
    if [m.strip() for m in mined] != [TEMPLATE]:
        raise RuntimeError(f"template mining found {mined}, expected exactly [{TEMPLATE!r}]")
    return out


def train_and_eval(root: Path, compiled: Path, size: Size, mode: str, seed: int) -> dict:
    run = root / "runs" / f"{mode}-seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    steps = str(size.steps)
    _run([sys.executable, "-m", "adapters.megatron.train", "--data", str(compiled), "--model", "llava-tiny",
          "--steps", steps, "--seed", str(seed), "--micro-batch-size", str(size.micro_batch), "--lr", str(size.lr),
          "--lr-warmup-iters", str(max(1, size.steps // 20)), "--lr-decay-style", "cosine",
          "--save", str(run / "ckpt"), "--save-interval", steps, "--log-json", str(run / "train.jsonl"),
          *MODES[mode]], run / "train.log")
    _run([sys.executable, "-m", "adapters.megatron.evaluate", "--checkpoint", str(run / "ckpt"),
          "--data", str(root / "eval.json"), "--image-root", str(root / "images"), "--out", str(run / "eval.json"),
          "--cache", str(root / "eval-candidates")],
         run / "eval.log")
    res = json.loads((run / "eval.json").read_text())
    lines = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    # The first steps pay for warm-up (allocations, first image decodes): the median of the rest.
    res["step_time_s"] = statistics.median(x["step_time_s"] for x in lines[len(lines) // 10:])
    res["final_loss"] = statistics.mean(x["loss"] for x in lines[-10:])
    res.pop("predictions", None)
    return res


FIELDS = (("accuracy", "acc"), ("accuracy_blank", "acc blank"), ("visual_contribution", "visual contrib"),
          ("pope_accuracy", "POPE acc"), ("pope_yes_rate", "POPE yes"), ("step_time_s", "step s"),
          ("final_loss", "train loss"))


def summarise(results: dict[str, list[dict]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for mode, runs in results.items():
        out[mode] = {}
        for key, _ in FIELDS:
            vals = [r[key] for r in runs]
            out[mode][key] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    return out


def table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    head = "| mode | " + " | ".join(label for _, label in FIELDS) + " |"
    rows = [head, "|" + "---|" * (len(FIELDS) + 1)]
    for mode, stats in summary.items():
        cells = [f"{stats[k]['mean']:.3f} ± {stats[k]['std']:.3f}" for k, _ in FIELDS]
        rows.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lit_vs_vit", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the CPU size (under 30 minutes on 2 cores)")
    p.add_argument("--work", default="/tmp/lit_vs_vit", help="working folder (data, checkpoints, logs)")
    p.add_argument("--json", help="write the per-run results and the summary here")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    for name in ("train", "held-out", "steps", "seeds", "micro-batch"):
        p.add_argument(f"--{name}", type=int, help="override the size preset")
    a = p.parse_args(argv)
    size = QUICK if a.quick else FULL
    over = {k: getattr(a, k) for k in ("train", "held_out", "steps", "seeds", "micro_batch") if getattr(a, k)}
    size = Size(**{**size.__dict__, **over})
    root = Path(a.work)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    compiled = prepare(root, size, a.seed)
    manifest = Manifest.read(compiled)
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    for seed in range(1, size.seeds + 1):
        for mode in MODES:
            results[mode].append(train_and_eval(root, compiled, size, mode, seed))
            print(f"{mode} seed {seed}: acc {results[mode][-1]['accuracy']:.3f} "
                  f"(blank {results[mode][-1]['accuracy_blank']:.3f})", flush=True)
    summary = summarise(results)
    print(f"\n{size}, {time.perf_counter() - t0:.0f} s in all; templates mined: "
          f"{manifest.config['template_mining']['templates']}\n")
    print(table(summary))
    if a.json:
        tokens = manifest.tokens.to_json() if manifest.tokens else None
        Path(a.json).write_text(json.dumps({"size": size.__dict__, "summary": summary, "runs": results,
                                            "tokens": tokens}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
