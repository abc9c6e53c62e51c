"""GPU benchmark of the Megatron adapter: 1B preset, seq 4096, on demo-like synthetic shards.

Reports (JSON to $OUT/bench.json): tokens/s and TFLOP/s of LIT packed training with the document mask, the
VIT/LIT step-time ratio, and packed-with-document-mask vs padded-unpacked throughput in REAL (non-padding)
tokens/s. TFLOP/s = (6 N + 6 L h S) x tokens / time, N = parameters (embeddings included), L layers,
h hidden, S sequence length (causal attention: 12 L h S halved); padding tokens counted for packed runs
only as the padding actually present in the batch (all rows are S long either way).
CPU check: python benchmarks/gpu/bench_train.py --device cpu --model tiny --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
warnings.filterwarnings("ignore")

from tests.megatron_utils import write_synthetic_shards  # noqa: E402

from adapters.megatron.data import PackedShardDataset  # noqa: E402
from adapters.megatron.loader import build_loader  # noqa: E402
from adapters.megatron.models import build_gpt, count_parameters, preset  # noqa: E402
from adapters.megatron.optimizer import MixedPrecisionAdamW  # noqa: E402
from adapters.megatron.reweigh import Reweigh  # noqa: E402
from adapters.megatron.step import StepModel, to_device, train_step  # noqa: E402
from adapters.megatron.train import init_distributed, model_flops_per_token  # noqa: E402
from litdata.shards.manifest import Manifest

VOCAB = 32000


def unpack(batch: dict) -> dict:
    """The same documents, one per row, each padded to S (the padded-unpacked baseline)."""
    rows = []
    for r in range(batch["tokens"].shape[0]):
        docs = batch["document_ids"][r]
        for d in range(int(docs.max()) + 1):
            rows.append((r, (docs == d).nonzero().flatten()))
    out = {k: torch.zeros((len(rows),) + v.shape[1:], dtype=v.dtype) for k, v in batch.items()
           if isinstance(v, torch.Tensor) and v.dim() == 2}
    out["document_ids"].fill_(-1)
    for i, (r, idx) in enumerate(rows):
        n = idx.numel()
        for k in out:
            out[k][i, :n] = batch[k][r, idx]
        out["position_ids"][i, n:] = torch.arange(n, batch["tokens"].shape[1])
    return out


def timed(sm, opt, batches, device, warmup: int) -> tuple[float, int]:
    for b in batches[:warmup]:
        train_step(sm, opt, [to_device(b, device)], clip_grad=1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    real = 0
    for b in batches[warmup:]:
        train_step(sm, opt, [to_device(b, device)], clip_grad=1.0)
        real += int((b["document_ids"] >= 0).sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / max(1, len(batches) - warmup), real


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--model", default="1b")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--micro-batch-size", type=int, default=2)
    p.add_argument("--seq-length", type=int)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--data", help="compiled shards (litdata compile/demo output); default: synthetic shards")
    p.add_argument("--optimizer", choices=("mixed", "bf16"), default="mixed",
                   help="mixed: the trainer's MixedPrecisionAdamW (float32 main weights and gradients); bf16: "
                        "torch's fused AdamW on the bf16 weights themselves (what the first H100 figures used)")
    a = p.parse_args()
    if a.device == "cpu" and torch.cuda.is_available():
        torch.cuda.is_available = lambda: False  # force the CPU path on a GPU box
    device, *_ = init_distributed(1, 1234)
    margs = preset(a.model, seq_length=a.seq_length)
    S = margs.seq_length
    n_batches = a.warmup + a.steps
    if a.data:
        data = a.data
        vocab = Manifest.read(data).vocab_size
    else:
        vocab = VOCAB if a.model == "1b" else 200
        data = tempfile.mkdtemp()
        write_synthetic_shards(data, sequences=n_batches * a.micro_batch_size, seq_len=S, vocab=vocab)
    result: dict = {"model": a.model, "seq_length": S, "micro_batch_size": a.micro_batch_size,
                    "data": a.data or "synthetic", "vocab": vocab, "optimizer": a.optimizer,
                    "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}

    model, state = build_gpt(margs, vocab_size=vocab, tp_size=1, on_gpu=device.type == "cuda")
    model.to(device)
    sm = StepModel(model=model, state=state)
    if a.optimizer == "mixed":
        opt = MixedPrecisionAdamW(model, lr=1e-4)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    n_params = count_parameters(model)
    fpt = model_flops_per_token(margs, n_params)
    result["parameters"] = n_params
    # lit, vit, lit: the first lit run pays for compilation; the reported lit timing is the second, warm one.
    for mode in ("lit", "vit", "lit"):
        ds = PackedShardDataset(data, seed=0, shuffle=False, epochs=None, reweigh=Reweigh(mode=mode))
        it = iter(build_loader(ds, micro_batch_size=a.micro_batch_size, seq_len=S))
        batches = [next(it) for _ in range(n_batches)]
        dt, real = timed(sm, opt, batches, device, a.warmup)
        tokens = a.micro_batch_size * S
        result[mode] = {"step_time_s": dt, "tokens_per_s": tokens / dt, "real_tokens_per_s": real / a.steps / dt,
                        "tflops": fpt * tokens / dt / 1e12}
        if mode == "lit" and "vit" not in result:
            unpacked = [unpack(b) for b in batches]
    result["vit_over_lit_step_time"] = result["vit"]["step_time_s"] / result["lit"]["step_time_s"]
    # Padded-unpacked: one document per row, each padded to S, the same documents as the timed LIT steps,
    # in micro-batches of the same number of rows as the packed run (same memory per step).
    rows = [{k: v[i : i + 1] for k, v in b.items()} for b in unpacked[a.warmup :] for i in range(b["tokens"].shape[0])]
    mbs = a.micro_batch_size
    micro = [{k: torch.cat([r[k] for r in rows[i : i + mbs]]) for k in rows[0]} for i in range(0, len(rows), mbs)]
    dt, real = timed(sm, opt, micro[:1] + micro, device, 1)  # one warm-up step for the new row count
    result["unpacked"] = {"real_tokens_per_s": real / (len(micro) * dt), "rows": len(rows),
                          "steps": len(micro), "step_time_s": dt}
    result["packed_over_unpacked_real_tokens"] = result["lit"]["real_tokens_per_s"] / result["unpacked"]["real_tokens_per_s"]
    result["tflops_formula"] = "(6*N + 6*L*h*S) * tokens / s / 1e12; N includes embeddings"
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
