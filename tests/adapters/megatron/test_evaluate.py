"""Multiple-choice evaluation of Megatron checkpoints (adapters/megatron/evaluate.py) and the LIT-vs-VIT
experiment's data (benchmarks/lit_vs_vit.py): scores are the candidates' log-likelihoods, a model blind to the
image has visual contribution 0, and the held-out scenes are new."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("megatron.core")

from adapters.megatron import evaluate as ev
from adapters.megatron.batch import SequenceArrays
from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import ImageSpec
from adapters.megatron.models import build_llava, preset
from adapters.megatron.step import StepModel
from benchmarks import lit_vs_vit as lvv
from litdata.shards.manifest import Manifest
from tests.helpers.megatron import init_parallel

ARGS = preset("llava-tiny")  # seq 256, 56 px images, 16 tokens per image


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small drawn-scene world: the training set compiled as the benchmark does, and held-out questions."""
    root = tmp_path_factory.mktemp("lvv")
    lvv.prepare(root, lvv.Size(train=60, held_out=12, steps=1, seeds=1, micro_batch=2, lr=1e-3), seed=0)
    return root


@pytest.fixture(scope="module")
def manifest(world) -> Manifest:
    return Manifest.read(world / "compiled")


@pytest.fixture(scope="module")
def questions(world) -> list[ev.Question]:
    return ev.load_questions(world / "eval.json")


@pytest.fixture(scope="module")
def candidates(world, manifest, questions) -> PackedShardDataset:
    out = ev.compile_candidates(ev.candidate_records(questions), manifest, image_root=str(world / "images"),
                                out=world / "candidates")
    return PackedShardDataset(out, shuffle=False, epochs=1, image_spec=ImageSpec(size=ARGS.img_size))


def tiny_llava(manifest: Manifest, seed: int = 0) -> StepModel:
    init_parallel()
    torch.manual_seed(seed)
    model, state = build_llava(ARGS, vocab_size=manifest.vocab_size, tp_size=1, on_gpu=False,
                               image_token_index=manifest.image_token_id)
    model.eval()
    return StepModel(model=model, state=state, image_token_index=manifest.image_token_id,
                     image_tokens=model.img_seq_len)


def direct_loglik(sm: StepModel, seq: SequenceArrays, doc: int) -> float:
    """One document run alone through the model's logits: sum of w_i * log p(t_i | t_<i), where the logit that
    predicts token i sits at the last image-expanded position of token i-1."""
    lo, hi = int(seq.cu_seqlens[doc]), int(seq.cu_seqlens[doc + 1])
    tokens, weights = seq.tokens[lo:hi], seq.weights[lo:hi]
    first_image = int(seq.images_per_doc[:doc].sum())
    images = seq.images[first_image:first_image + int(seq.images_per_doc[doc])]
    is_image = tokens == sm.image_token_index
    ends = np.cumsum(np.where(is_image, sm.image_tokens, 1))
    length = int(ends[-1])
    sm.state.set(torch.zeros(1, length, dtype=torch.long), torch.arange(length).unsqueeze(0))
    with torch.no_grad():
        logits, _ = sm.model(torch.from_numpy(np.stack(images)), torch.from_numpy(tokens.astype(np.int64))[None],
                             torch.arange(len(tokens))[None], None, labels=None,
                             num_image_tiles=torch.ones(len(images), dtype=torch.int),
                             image_token_index=sm.image_token_index)
    sm.state.clear()
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return float(sum(w * logp[ends[i - 1] - 1, tokens[i]] for i, w in enumerate(weights) if i > 0 and w > 0))


def test_scores_are_the_candidates_log_likelihoods_each_run_alone(manifest, candidates, questions):
    sm = tiny_llava(manifest)
    scores = ev.score(sm, candidates, seq_len=manifest.seq_len, blank=False)
    seqs = list(candidates)
    checked = 0
    for seq in seqs[:3]:
        assert len(seq.meta["documents"]) > 1  # packed: isolation between candidates is part of what is checked
        for d, doc in enumerate(seq.meta["documents"]):
            assert scores[doc["id"]] == pytest.approx(direct_loglik(sm, seq, d), rel=1e-4, abs=1e-4)
            checked += 1
    assert checked >= 6
    n_candidates = sum(len(q.candidates) for q in questions)
    assert len(scores) == n_candidates


def test_only_the_answer_and_its_end_of_turn_are_scored(candidates):
    from litdata.classes import TokenClass

    for seq in candidates:
        scored = seq.classes[seq.weights > 0]
        assert scored.size and np.all(scored == TokenClass.RESPONSE)


def test_a_model_blind_to_the_image_has_visual_contribution_zero(manifest, candidates, questions):
    sm = tiny_llava(manifest, seed=1)
    with torch.no_grad():
        for p in sm.model.vision_projection.parameters():
            p.zero_()  # every image becomes the same zero embeddings: the model cannot see it
    real = ev.score(sm, candidates, seq_len=manifest.seq_len, blank=False)
    blank = ev.score(sm, candidates, seq_len=manifest.seq_len, blank=True)
    res = ev.report(questions, real, blank)
    assert res["visual_contribution"] == 0.0 and res["accuracy"] == res["accuracy_blank"]


def test_a_model_that_sees_scores_the_blank_image_differently(manifest, candidates):
    sm = tiny_llava(manifest, seed=1)
    real = ev.score(sm, candidates, seq_len=manifest.seq_len, blank=False)
    blank = ev.score(sm, candidates, seq_len=manifest.seq_len, blank=True)
    assert any(abs(real[k] - blank[k]) > 1e-6 for k in real)


def test_report_counts_accuracy_per_kind_and_the_pope_yes_rate():
    qs = [ev.Question(id="a", image=None, question="?", candidates=("yes", "no"), answer="no", kind="exists"),
          ev.Question(id="b", image=None, question="?", candidates=("yes", "no"), answer="yes", kind="exists"),
          ev.Question(id="c", image=None, question="?", candidates=("red", "blue"), answer="blue", kind="color")]
    real = {"a#0": -1.0, "a#1": -2.0, "b#0": -1.0, "b#1": -3.0, "c#0": -5.0, "c#1": -1.0}
    blank = {"a#0": -1.0, "a#1": -2.0, "b#0": -1.0, "b#1": -3.0, "c#0": -1.0, "c#1": -5.0}
    res = ev.report(qs, real, blank)
    assert res["accuracy"] == pytest.approx(2 / 3) and res["accuracy_blank"] == pytest.approx(1 / 3)
    assert res["visual_contribution"] == pytest.approx(1 / 3)
    assert res["pope_accuracy"] == 0.5 and res["pope_yes_rate"] == 1.0
    assert res["by_kind"]["color"] == {"questions": 1, "accuracy": 1.0, "accuracy_blank": 0.0}


@pytest.mark.parametrize("bad, reason", [
    ({"id": "x", "question": "q", "candidates": ["a", "b"], "answer": "c"}, "not one of the candidates"),
    ({"id": "x", "question": "q", "candidates": ["a"], "answer": "a"}, "at least two"),
    ({"id": "x#1", "question": "q", "candidates": ["a", "b"], "answer": "a"}, "contains '#'"),
    ({"question": "q", "candidates": ["a", "b"], "answer": "a"}, "'id'"),
])
def test_malformed_questions_are_named_by_index_and_reason(tmp_path, bad, reason):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps([{"id": "ok", "question": "q", "candidates": ["a", "b"], "answer": "a"}, bad]))
    with pytest.raises(ValueError, match=r"eval\.json\[1\].*" + reason.replace("'", ".")):
        ev.load_questions(path)


def test_held_out_scenes_are_new_and_balanced_while_training_carries_the_prior():
    train = lvv.generate(3000, split="train", seed=0, biased=True)
    held = lvv.generate(900, split="eval", seed=0, biased=False, avoid={it.scene for it in train})
    assert not {it.scene for it in train} & {it.scene for it in held}
    assert len({it.scene for it in held}) == len(held)
    for kind, prior in lvv.PRIOR.items():
        tr = [it.answer == prior for it in train if it.kind == kind]
        he = [it for it in held if it.kind == kind]
        assert 0.7 < sum(tr) / len(tr) < 0.8
        share = sum(it.answer == prior for it in he) / len(he)
        assert share < (0.6 if kind == "exists" else 0.35)  # chance: 1/2 for yes/no, 1/4 otherwise
    for it in held:
        assert it.answer in it.candidates and it.question.endswith(lvv.TEMPLATE)


def test_the_quick_benchmark_path_runs_and_reports_every_field(tmp_path, monkeypatch):
    out = tmp_path / "res.json"
    assert lvv.main(["--quick", "--train", "30", "--held-out", "9", "--steps", "2", "--seeds", "1",
                     "--micro-batch", "2", "--work", str(tmp_path / "work"), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res["summary"]) == set(lvv.MODES)
    for mode, stats in res["summary"].items():
        assert {k for k, _ in lvv.FIELDS} <= set(stats)
        assert 0.0 <= stats["accuracy"]["mean"] <= 1.0 and stats["step_time_s"]["mean"] > 0
        assert len(res["runs"][mode]) == 1 and res["runs"][mode][0]["questions"] == 9
