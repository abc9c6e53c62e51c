"""The training entry point on the compiled demo: TP=2 under torchrun lowers the loss, and a resumed run
repeats the same steps."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("megatron.core")

from adapters.megatron.models import preset
from tests.helpers.megatron import compile_demo, free_port

ROOT = Path(__file__).resolve().parents[3]
SEQ = 512


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The bundled demo compiled at seq 512 with 16 slots per image (122 packed sequences; a GPTModel reads each
    image placeholder as one token), vocabulary from the manifest."""
    return compile_demo(tmp_path_factory, "train", seq_len=SEQ, image_tokens=16)


def train(data: Path, tmp: Path, log: str, *extra: str) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", f"--master-port={free_port()}",
           "-m", "adapters.megatron.train", "--data", str(data), "--tensor-model-parallel-size", "2",
           "--model", "tiny", "--micro-batch-size", "4", "--lr", "3e-3", "--steps", "20",
           "--log-json", str(tmp / log), *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (tmp / log).read_text().splitlines()]


@pytest.mark.distributed
def test_twenty_steps_lower_the_loss_and_resume_repeats_them(demo, tmp_path):
    full = train(demo, tmp_path, "full.jsonl", "--save", str(tmp_path / "ckpt"), "--save-interval", "10")
    assert [r["step"] for r in full] == list(range(1, 21))
    assert sum(r["loss"] for r in full[-5:]) / 5 < full[0]["loss"] - 0.1
    assert all(r["supervised_tokens"] > 0 and r["response_loss"] is not None for r in full)

    resumed = train(demo, tmp_path, "resumed.jsonl", "--load", str(tmp_path / "ckpt" / "iter_0000010"))
    assert [r["step"] for r in resumed] == list(range(11, 21))
    for a, b in zip(full[10:], resumed):
        assert b["supervised_tokens"] == a["supervised_tokens"]  # same batches
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


def test_vit_mode_reports_instruction_loss_without_training_on_it(demo, tmp_path):
    env = dict(os.environ, MASTER_PORT=str(free_port()), PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "adapters.megatron.train", "--data", str(demo), "--steps", "2", "--mode", "vit",
           "--log-json", str(tmp_path / "v.jsonl")]
    done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["instruction_loss"] is not None
        assert r["loss"] == pytest.approx(r["response_loss"], rel=1e-6)  # only responses carry weight


def test_a_corrupt_shard_stops_training_with_its_name_or_is_skipped_and_counted(tmp_path):
    from litdata.cli import main

    data = tmp_path / "demo"
    assert main(["demo", "--out", str(data), "--seq-len", str(SEQ), "--image-tokens", "16",
                 "--max-shard-sequences", "20", "--no-progress"]) == 0
    shards = sorted(data.glob("shard-*.tar"))
    assert len(shards) >= 3
    for shard in shards[:-1]:  # all but one: whatever the seeded shard order, the first one read is corrupt
        blob = bytearray(shard.read_bytes())
        blob[5000] ^= 0xFF
        shard.write_bytes(bytes(blob))

    def run(*extra):
        env = dict(os.environ, MASTER_PORT=str(free_port()), PYTHONWARNINGS="ignore")
        cmd = [sys.executable, "-m", "adapters.megatron.train", "--data", str(data), "--steps", "8",
               "--micro-batch-size", "4", "--log-json", str(tmp_path / "c.jsonl"), *extra]
        return subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    failed = run()
    assert failed.returncode != 0 and "sha256" in failed.stderr
    assert any(s.name in failed.stderr for s in shards[:-1])
    done = run("--skip-corrupt")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[-1]["shards_skipped"] >= len(shards) - 1  # counted again each epoch


def test_bf16_training_with_a_schedule_resumes_bit_for_bit(demo, tmp_path):
    """bf16 weights, float32 main weights in the optimizer (MixedPrecisionAdamW), and Megatron's warmup + cosine
    schedule: the checkpoint must carry the main weights and the schedule, or the resumed run would restart
    from their bf16 rounding (or from warmup) and drift from the full one."""
    def run(log: str, *extra: str) -> list[dict]:
        env = dict(os.environ, MASTER_PORT=str(free_port()), PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "adapters.megatron.train", "--data", str(demo), "--model", "tiny", "--bf16",
               "--steps", "6", "--lr", "3e-3", "--micro-batch-size", "4", "--lr-warmup-iters", "2",
               "--lr-decay-style", "cosine", "--min-lr", "3e-4", "--log-json", str(tmp_path / log), *extra]
        done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in (tmp_path / log).read_text().splitlines()]

    full = run("full.jsonl", "--save", str(tmp_path / "ckpt"), "--save-interval", "3")
    assert full[-1]["loss"] < full[0]["loss"] - 0.1
    # Megatron's schedule, stepped after every iteration: 0 at the first step, peak after 2, cosine to 3e-4 at 6.
    cosine = [3e-4 + 2.7e-3 * 0.5 * (1 + math.cos(math.pi * (k - 2) / 4)) for k in (3, 4, 5)]
    assert [r["lr"] for r in full] == pytest.approx([0.0, 1.5e-3, 3e-3, *cosine])
    resumed = run("resumed.jsonl", "--load", str(tmp_path / "ckpt" / "iter_0000003"))
    assert [r["step"] for r in resumed] == [4, 5, 6]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in full[3:]]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full[3:]]


@pytest.mark.distributed
def test_a_tp2_checkpoint_resumes_at_tp1_and_refuses_another_dp_size(demo, tmp_path):
    """Model and optimizer state go through Megatron's dist_checkpointing sharded like the parameters, so a
    TP=2 run continues at TP=1 with the same losses (up to TP's float reordering); the loader's position belongs
    to a data-parallel rank, so DP=2 is refused with the reason, and so is another padded vocabulary."""
    def run(log: str, nproc: int, tp: int, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
               f"--master-port={free_port()}", "-m", "adapters.megatron.train", "--data", str(demo),
               "--tensor-model-parallel-size", str(tp), "--model", "tiny", "--micro-batch-size", "4", "--lr", "3e-3",
               "--steps", "6", "--lr-decay-style", "cosine", "--log-json", str(tmp_path / log), *extra]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        return subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    def rows(log: str) -> list[dict]:
        return [json.loads(line) for line in (tmp_path / log).read_text().splitlines()]

    saved = run("tp2.jsonl", 2, 2, "--save", str(tmp_path / "ckpt"), "--save-interval", "3")
    assert saved.returncode == 0, saved.stderr[-3000:]
    ckpt = str(tmp_path / "ckpt" / "iter_0000003")
    # At TP=2 the vocabulary is padded to a multiple of 128 x 2; at TP=1 to 128, another model.
    refused = run("vocab.jsonl", 1, 1, "--load", ckpt)
    assert refused.returncode != 0 and "--make-vocab-size-divisible-by" in refused.stderr
    resumed = run("tp1.jsonl", 1, 1, "--load", ckpt, "--make-vocab-size-divisible-by", "256")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full, tp1 = rows("tp2.jsonl"), rows("tp1.jsonl")
    assert [r["step"] for r in tp1] == [4, 5, 6]
    for a, b in zip(full[3:], tp1):
        assert (b["supervised_tokens"], b["lr"]) == (a["supervised_tokens"], a["lr"])
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)

    refused = run("dp2.jsonl", 2, 1, "--load", ckpt, "--make-vocab-size-divisible-by", "256")
    assert refused.returncode != 0
    assert "saved with 1 data-parallel ranks, this run has 2" in refused.stderr


def test_model_and_image_options_reach_the_model_and_the_loader():
    from adapters.megatron.images import CLIP_STD
    from adapters.megatron.train import images_for, parse_args

    a = parse_args(["--data", "x", "--model", "llava-tiny", "--init-method-std", "0.006", "--rotary-base", "500000",
                    "--image-mean", "0.5", "0.5", "0.5", "--image-aspect", "resize"])
    margs = preset(a.model, **{k: getattr(a, k) for k in ("init_method_std", "rotary_base")})
    assert (margs.init_method_std, margs.rotary_base) == (0.006, 500000)
    spec = images_for(a, margs)
    assert (spec.size, spec.mean, spec.std, spec.pad_to_square) == (56, (0.5, 0.5, 0.5), CLIP_STD, False)
    assert images_for(parse_args(["--data", "x"]), preset("tiny")) is None
