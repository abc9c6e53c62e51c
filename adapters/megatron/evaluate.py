"""`python -m adapters.megatron.evaluate`: multiple-choice evaluation of a checkpoint of the Megatron trainer.

    python -m adapters.megatron.evaluate --checkpoint ckpt/ --data eval.json --image-root images/ --out eval.json

Each question's candidate answers are scored by their summed log-likelihood, as lm-evaluation-harness scores
multiple choice (no decoding loop): the candidate whose tokens the model finds most likely is its answer. The
candidates go through litdata itself: every (question, candidate) pair becomes a one-turn record, compiled with the
training run's tokenizer, template, seq_len and image tokens in `--mode vit`, so the scored tokens are exactly what
training supervises in an answer (the answer text and its end-of-turn token), and packing cannot leak between
candidates (the model's document masks keep packed documents apart).

Reported: accuracy; accuracy with every image replaced by a blank one (the mean colour, i.e. zeros after
normalisation) and the visual contribution (the difference); per question kind; and for yes/no existence
questions (POPE style) accuracy and the rate of "yes". EVAL.json is a JSON array of
`{"id", "image", "question", "candidates": [...], "answer", "kind"}`; `kind` "exists" marks POPE questions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from litdata.shards.manifest import Manifest
from litdata.shards.schema import MANIFEST

TRAIN_ARGS = "train_args.json"  # written by the trainer beside its checkpoints (--save)


@dataclass(frozen=True, kw_only=True)
class Question:
    id: str
    image: str | None
    question: str
    candidates: tuple[str, ...]
    answer: str
    kind: str = ""


def load_questions(path: str | Path) -> list[Question]:
    """EVAL.json -> questions; a malformed entry is named by its index and field."""
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exn:
        raise ValueError(f"{path}: cannot read a JSON array of questions ({exn})") from None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty JSON array of questions")
    out, seen = [], set()
    for i, q in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(q, dict):
            raise ValueError(f"{where}: not an object")
        for key in ("id", "question", "answer"):
            if not isinstance(q.get(key), str) or not q[key]:
                raise ValueError(f"{where}: {key!r} must be a non-empty string")
        cands = q.get("candidates")
        if not isinstance(cands, list) or len(cands) < 2 or not all(isinstance(c, str) and c for c in cands):
            raise ValueError(f"{where}: 'candidates' must list at least two non-empty strings")
        if q["answer"] not in cands:
            raise ValueError(f"{where}: answer {q['answer']!r} is not one of the candidates")
        if q["id"] in seen or "#" in q["id"]:
            raise ValueError(f"{where}: id {q['id']!r} is repeated or contains '#'")
        seen.add(q["id"])
        out.append(Question(id=q["id"], image=q.get("image"), question=q["question"], candidates=tuple(cands),
                            answer=q["answer"], kind=str(q.get("kind", ""))))
    return out


def candidate_records(questions: Iterable[Question]) -> list[dict]:
    """One LLaVA record per (question, candidate): the candidate is the answer turn whose tokens are scored."""
    records = []
    for q in questions:
        human = f"<image>\n{q.question}" if q.image else q.question
        for k, cand in enumerate(q.candidates):
            rec = {"id": f"{q.id}#{k}", "conversations": [{"from": "human", "value": human},
                                                          {"from": "gpt", "value": cand}]}
            if q.image:
                rec["image"] = q.image
            records.append(rec)
    return records


def compile_candidates(records: list[dict], train: Manifest, *, image_root: str | None, out: Path) -> Path:
    """Compile the candidate records as training compiled its data (same tokenizer, template, lengths); `train`
    is the training data's manifest."""
    from litdata.cli import main as litdata_main

    source = out.parent / "candidates.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    args = [str(source), "--out", str(out), "--tokenizer", str(train.tokenizer.get("path")),
            "--template", str(train.template), "--seq-len", str(train.seq_len),
            "--image-tokens", str(train.image_tokens), "--mode", "vit", "--no-mine-templates",
            "--no-progress", "--overwrite"]
    if image_root:
        args += ["--image-root", image_root]
    if litdata_main(["compile", *args]) != 0:
        raise RuntimeError(f"compiling the candidates into {out} failed (see the messages above)")
    counts = Manifest.read(out, compiled=True).counts
    if counts is not None and counts.rejected:
        rejects = (out / "rejects.jsonl").read_text().splitlines()[:3]
        raise ValueError(f"{counts.rejected} candidate records were rejected, e.g. {rejects}")
    return out


def document_logliks(sm: Any, batch: dict, blank: bool) -> list[float]:
    """Summed log-likelihood of each document's weighted tokens in a one-row batch (stored token space)."""
    from adapters.megatron.loss import WeightedLoss
    from adapters.megatron.step import expand_batch, forward_step

    if blank and "images" in batch:
        batch = {**batch, "images": torch.zeros_like(batch["images"])}
    if sm.image_token_index is not None:
        batch = expand_batch(batch, image_token_index=sm.image_token_index, image_tokens=sm.image_tokens,
                             max_length=sm.max_length)
        docs = batch["lm_document_ids"]
    else:
        docs = batch["document_ids"]
    loss = WeightedLoss(weight_total=torch.ones((), dtype=torch.float64))
    ce, _ = forward_step(sm, loss, iter([batch]), sm.model)
    sm.state.clear()
    w = batch["loss_mask"].to(ce.dtype)
    # A document id covers its tokens; the weight of predicting token i+1 sits on token i of the same document.
    n_docs = int(docs.max()) + 1 if docs.numel() else 0
    keep = docs >= 0
    sums = torch.zeros(n_docs, dtype=torch.float64).index_add_(0, docs[keep].long(), (w * ce)[keep].double())
    return [-float(s) for s in sums]


def score(sm: Any, dataset: Any, *, seq_len: int, blank: bool) -> dict[str, float]:
    """Candidate record id -> summed log-likelihood, over every packed sequence of the compiled candidates."""
    from adapters.megatron.batch import collate

    spec = dataset.image_spec
    out: dict[str, float] = {}
    with torch.no_grad():
        for seq in dataset:
            batch = collate([seq], seq_len=seq_len, pad_id=dataset.pad_id,
                            image_tokens=dataset.image_tokens if spec else None,
                            image_size=spec.size if spec else None)
            for doc, ll in zip(seq.meta["documents"], document_logliks(sm, batch, blank)):
                out[doc["id"]] = ll
    return out


def report(questions: Sequence[Question], real: dict[str, float], blank: dict[str, float]) -> dict[str, Any]:
    """Accuracy (overall and per kind), with and without the image, and POPE accuracy and yes-rate."""

    def choose(q: Question, ll: dict[str, float]) -> str:
        scores = [ll[f"{q.id}#{k}"] for k in range(len(q.candidates))]
        return q.candidates[max(range(len(scores)), key=scores.__getitem__)]  # ties: the first candidate

    rows = [(q, choose(q, real), choose(q, blank)) for q in questions]
    by_kind: dict[str, list[tuple[Question, str, str]]] = defaultdict(list)
    for row in rows:
        by_kind[row[0].kind].append(row)

    def acc(rs: Sequence[tuple[Question, str, str]], col: int) -> float:
        return sum(r[col] == r[0].answer for r in rs) / len(rs)

    res: dict[str, Any] = {"questions": len(rows), "accuracy": acc(rows, 1), "accuracy_blank": acc(rows, 2)}
    res["visual_contribution"] = res["accuracy"] - res["accuracy_blank"]
    res["by_kind"] = {k: {"questions": len(rs), "accuracy": acc(rs, 1), "accuracy_blank": acc(rs, 2)}
                      for k, rs in sorted(by_kind.items())}
    pope = by_kind.get("exists", [])
    if pope:
        res["pope_accuracy"] = acc(pope, 1)
        res["pope_yes_rate"] = sum(r[1].lower() == "yes" for r in pope) / len(pope)
    res["predictions"] = {q.id: {"real": r, "blank": b} for q, r, b in rows}
    return res


def load_model(checkpoint: str, train_args: dict, *, seed: int) -> tuple[Any, Manifest]:
    """The trained model (TP 1, one process) with the checkpoint's weights, and the training data's manifest."""
    from adapters.megatron import checkpoint as ckpt
    from adapters.megatron.models import ModelArgs, build_gpt, build_llava
    from adapters.megatron.optimizer import MixedPrecisionAdamW
    from adapters.megatron.shards import resolve_shards
    from adapters.megatron.step import StepModel
    from adapters.megatron.train import init_distributed

    margs = ModelArgs(**train_args["model"])
    manifest = resolve_shards(train_args["data"]).manifest
    if manifest is None:
        raise ValueError(f"{train_args['data']}: no {MANIFEST}; evaluation compiles its candidates as the training "
                         "data was compiled, which needs the training data's manifest")
    device, *_ = init_distributed(1, seed)
    vocab = int(train_args["vocab_size"])
    if margs.vision:
        model, state = build_llava(margs, vocab_size=vocab, tp_size=1, on_gpu=device.type == "cuda",
                                   image_token_index=manifest.image_token_id)
        sm = StepModel(model=model, state=state, image_token_index=manifest.image_token_id,
                       image_tokens=int(model.img_seq_len))
    else:
        model, state = build_gpt(margs, vocab_size=vocab, tp_size=1, on_gpu=device.type == "cuda")
        sm = StepModel(model=model, state=state)
    model.to(device)
    # The optimizer is only a target for the checkpoint's optimizer state, which evaluation does not use.
    ckpt.load(checkpoint, model=model, optimizer=MixedPrecisionAdamW(model, lr=0.0))
    model.eval()
    return sm, manifest


def candidates_key(questions: Sequence[Question], train: Manifest, image_root: str | None) -> str:
    """What the compiled candidates depend on: the questions, and the training compile's tokenization options."""
    import hashlib

    used = {"template": train.template, "seq_len": train.seq_len, "image_tokens": train.image_tokens,
            "tokenizer": train.tokenizer.get("vocab_hash")}
    blob = json.dumps([[dataclasses.asdict(q) for q in questions], used, image_root], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def evaluate(sm: Any, train: Manifest, questions: list[Question], *, image_root: str | None, workdir: Path,
             image_spec: Any) -> dict[str, Any]:
    """Compile the candidates into `workdir/KEY` (reused when it is already there) and score them."""
    from adapters.megatron.data import PackedShardDataset

    out = workdir / candidates_key(questions, train, image_root) / "compiled"
    if not (out / MANIFEST).is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        compile_candidates(candidate_records(questions), train, image_root=image_root, out=out)
    dataset = PackedShardDataset(out, shuffle=False, epochs=1, image_spec=image_spec)
    seq_len = train.seq_len or dataset.shardset.seq_len
    real = score(sm, dataset, seq_len=seq_len, blank=False)
    blank = score(sm, dataset, seq_len=seq_len, blank=True) if image_spec is not None else real
    return report(questions, real, blank)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m adapters.megatron.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="the trainer's --save folder (or one iter_N folder in it)")
    p.add_argument("--data", required=True, help="EVAL.json: questions with candidate answers")
    p.add_argument("--image-root", help="folder the questions' image paths are relative to")
    p.add_argument("--out", help="write the report here as JSON")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--cache", help="keep the compiled candidates here and reuse them for the same questions and "
                                   "training data (several checkpoints of one run, or of one benchmark)")
    return p.parse_args(argv)


def read_train_args(checkpoint: str) -> dict:
    for folder in (Path(checkpoint), Path(checkpoint).parent):
        if (folder / TRAIN_ARGS).is_file():
            return json.loads((folder / TRAIN_ARGS).read_text())
    raise FileNotFoundError(f"{checkpoint}: no {TRAIN_ARGS} (written by `adapters.megatron.train --save`)")


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    from adapters.megatron.train import images_for

    train_args = read_train_args(a.checkpoint)
    questions = load_questions(a.data)
    sm, manifest = load_model(a.checkpoint, train_args, seed=a.seed)
    from adapters.megatron.models import ModelArgs

    spec = images_for(argparse.Namespace(**train_args["image"]), ModelArgs(**train_args["model"]))
    with tempfile.TemporaryDirectory(prefix="litdata-eval-") as tmp:
        res = evaluate(sm, manifest, questions, image_root=a.image_root, workdir=Path(a.cache or tmp), image_spec=spec)
    summary = {k: v for k, v in res.items() if k != "predictions"}
    print(json.dumps(summary), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    torch.distributed.destroy_process_group()
    return 0


def train_args_record(a: argparse.Namespace, margs: Any, vocab: int) -> dict:
    """What evaluation needs to rebuild the trained model and its data (the trainer writes it with --save)."""
    return {"model": dataclasses.asdict(margs), "data": str(Path(a.data).resolve()) if Path(a.data).exists() else str(a.data), "vocab_size": int(vocab), "mode": a.mode,
            "weight": a.weight or [],
            "image": {"image_mean": a.image_mean, "image_std": a.image_std, "image_aspect": a.image_aspect}}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, RuntimeError) as exn:
        print(f"error: {exn}", file=sys.stderr)
        sys.exit(2)
