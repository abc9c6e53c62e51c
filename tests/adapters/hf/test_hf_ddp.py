"""Two data-parallel processes (torchrun, gloo on CPU) take the same optimizer step as one process holding both
ranks' rows: the weight sum is gathered over ranks and the loss is scaled for DDP's gradient mean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.compile import compile_cli
from tests.helpers.megatron import free_port

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r'''
import sys
import torch
from safetensors.torch import save_file
from transformers import TrainerCallback, TrainingArguments
from adapters.hf.dataset import LitShardDataset
from adapters.hf.trainer import LitTrainer
from tests.helpers.hf_models import tiny_llava

data, batch, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Grab(TrainerCallback):
    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if args.process_index == 0:
            save_file({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}, out)


model, collate = tiny_llava()
args = TrainingArguments(output_dir=out + ".run", max_steps=1, per_device_train_batch_size=batch, report_to=[],
                         use_cpu=True, save_strategy="no", disable_tqdm=True, max_grad_norm=0.0)
trainer = LitTrainer(model=model.train(), args=args, train_dataset=LitShardDataset(data, shuffle=False),
                     data_collator=collate, callbacks=[Grab()])
trainer.train()
# Trainer leaves the process group alive; gloo's threads torn down at interpreter exit abort the process now and
# then ("terminate called without an active exception", pytorch/pytorch#190489), as the README warns.
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
'''


@pytest.mark.distributed
def test_two_ranks_take_the_step_of_one_process_with_both_rows(tmp_path):
    data = tmp_path / "demo"
    assert compile_cli("demo", "--out", data, "--seq-len", 512, "--image-tokens", 4, "--no-progress") == 0
    (tmp_path / "step.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "step.py", str(data), "2", str(tmp_path / "one.pt")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                          str(free_port()), "step.py", str(data), "1", str(tmp_path / "two.pt")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    g1, g2 = load_file(tmp_path / "one.pt"), load_file(tmp_path / "two.pt")
    assert g1.keys() == g2.keys() and len(g1) > 40
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], rtol=1e-4, atol=1e-7, msg=name)
