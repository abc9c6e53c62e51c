"""`LitTrainer` (transformers.Trainer) on the demo shards with a tiny LLaVA: the loss falls over 20 steps, and a run
resumed from a Trainer checkpoint continues with the same batches and the same losses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adapters.hf.dataset import LitShardDataset
from adapters.hf.trainer import LitTrainer
from tests.helpers.compile import compile_cli


@pytest.fixture(scope="module")
def demo4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hftrainer") / "out"
    assert compile_cli("demo", "--out", out, "--seq-len", 512, "--image-tokens", 4, "--no-progress") == 0
    return out


class RecordingTrainer(LitTrainer):
    """Notes a fingerprint of every micro-batch it trains on."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        digest = hashlib.sha256(inputs["input_ids"].numpy().tobytes() + inputs["pixel_values"].numpy().tobytes())
        self.seen.append((self.state.global_step, digest.hexdigest()[:16]))
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def run(demo4: Path, out: Path, *, resume: str | None = None) -> RecordingTrainer:
    from transformers import TrainingArguments

    from tests.helpers.hf_models import tiny_llava

    model, collate = tiny_llava()
    args = TrainingArguments(output_dir=str(out), max_steps=20, per_device_train_batch_size=1,
                             gradient_accumulation_steps=2, learning_rate=3e-3, lr_scheduler_type="constant",
                             logging_steps=1, save_steps=10, report_to=[], use_cpu=True, seed=0,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = RecordingTrainer(model=model.train(), args=args, train_dataset=LitShardDataset(demo4, seed=1),
                               data_collator=collate)
    trainer.seen = []
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def losses(trainer) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}


def test_training_lowers_the_loss_and_a_resumed_run_continues_with_the_same_batches(demo4, tmp_path):
    full = run(demo4, tmp_path / "full")
    curve = losses(full)
    assert sorted(curve) == list(range(1, 21))
    first, last = sum(curve[s] for s in (1, 2, 3)) / 3, sum(curve[s] for s in (18, 19, 20)) / 3
    assert last < 0.8 * first, curve
    assert len(full.seen) == 40 and len({d for _, d in full.seen}) == 40  # 40 different micro-batches

    resumed = run(demo4, tmp_path / "full", resume=str(tmp_path / "full" / "checkpoint-10"))
    assert resumed.seen == full.seen[20:]  # the micro-batches of steps 11..20, in order
    again = losses(resumed)
    assert sorted(again) == list(range(1, 21))  # steps 1..10 come from the checkpoint's trainer_state.json
    for step in range(11, 21):
        assert again[step] == pytest.approx(curve[step], rel=1e-4), step


def readme_blocks() -> list[str]:
    """The python blocks of the README's Hugging Face section, in order."""
    text = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = text.split("## Train with Hugging Face Trainer or TRL", 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]


@pytest.mark.parametrize("which", ["trainer", "trl"])
def test_the_readme_scripts_run(demo4, tmp_path, which):
    import subprocess
    import sys

    script, trl = readme_blocks()
    if which == "trl":
        script = script.split("trainer = LitTrainer(", 1)[0] + trl
    (tmp_path / "train_hf.py").write_text(script)
    root = Path(__file__).resolve().parents[3]
    run = subprocess.run([sys.executable, "train_hf.py", str(demo4)], cwd=tmp_path, capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(root)}, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "'train_loss'" in run.stdout + run.stderr
