"""Where the 1B step time goes on the GPU: full step vs forward+backward only, document mask vs plain causal,
and the block mask built eagerly vs compiled. Prints one JSON object (and writes it to $OUT/profile.json).
CPU check: python benchmarks/gpu/profile_step.py --device cpu --model tiny --seq-length 512 --data DEMO512
(DEMO512: `litdata demo --out DEMO512 --seq-len 512 --image-tokens 1`). The full step uses the trainer's
MixedPrecisionAdamW; `full_step_adamw_on_bf16_weights` is the optimizer of the first H100 figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
warnings.filterwarnings("ignore")

from adapters.megatron.data import PackedShardDataset  # noqa: E402
from adapters.megatron.loader import build_loader  # noqa: E402
from adapters.megatron.models import build_gpt, count_parameters, preset  # noqa: E402
from adapters.megatron.optimizer import MixedPrecisionAdamW  # noqa: E402
from adapters.megatron.step import StepModel, to_device, train_step  # noqa: E402
from adapters.megatron.train import init_distributed, model_flops_per_token  # noqa: E402
from litdata.shards.manifest import Manifest


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--model", default="1b")
    p.add_argument("--seq-length", type=int)
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    a = p.parse_args()
    if a.device == "cpu":
        torch.cuda.is_available = lambda: False
    device, *_ = init_distributed(1, 1234)
    margs = preset(a.model, seq_length=a.seq_length)
    S = margs.seq_length
    vocab = Manifest.read(a.data).vocab_size
    model, state = build_gpt(margs, vocab_size=vocab, tp_size=1, on_gpu=device.type == "cuda")
    model.to(device)
    sm = StepModel(model=model, state=state)
    opt = MixedPrecisionAdamW(model, lr=1e-5)  # what the trainer uses
    pure_bf16 = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")  # timed last
    fpt = model_flops_per_token(margs, count_parameters(model))
    it = iter(build_loader(PackedShardDataset(a.data, shuffle=False, epochs=None), micro_batch_size=2, seq_len=S))
    batches = [to_device(next(it), device) for _ in range(a.steps + 2)]

    def timeit(name, step):
        for b in batches[:2]:
            step(b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for b in batches[2:]:
            step(b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / a.steps
        res[name] = {"step_s": round(dt, 5), "tflops": round(fpt * 2 * S / dt / 1e12, 1)}
        print(name, res[name], flush=True)

    res: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "seq": S}
    timeit("full_step", lambda b: train_step(sm, opt, [b], clip_grad=1.0))
    timeit("no_clip", lambda b: train_step(sm, opt, [b]))
    timeit("fwd_bwd_only", lambda b: train_step(sm, None, [b]))
    timeit("fwd_bwd_causal", lambda b: train_step(sm, None, [{**b, "document_ids": None}]))
    if device.type == "cuda":  # Megatron's RotaryEmbedding moves inv_freq to the CUDA device: GPU only
        # Its own rope (positions 0..S-1 of the row, [s, 1, 1, d]): the cost of restarting positions per document.
        document_rope = model.rotary_pos_emb
        model.rotary_pos_emb = document_rope.base
        timeit("fwd_bwd_stock_rope", lambda b: train_step(sm, None, [b]))
        model.rotary_pos_emb = document_rope

        from torch.nn.attention.flex_attention import create_block_mask

        eager_block_mask = state.block_mask

        def compiled_block_mask(sq, sk, dev):
            if state._mask is None:
                docs = state.document_ids.to(dev, torch.int32)

                def mask_mod(b, h, q, k):
                    return (q >= k) & (docs[b, q] == docs[b, k])

                state._mask = create_block_mask(mask_mod, docs.shape[0], None, sq, sk, device=dev, _compile=True)
            return state._mask

        state.block_mask = compiled_block_mask
        timeit("fwd_bwd_mask_compiled", lambda b: train_step(sm, None, [b]))
        timeit("full_step_mask_compiled", lambda b: train_step(sm, opt, [b], clip_grad=1.0))
        state.block_mask = eager_block_mask
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for b in batches:
            state.set(b["document_ids"], b["position_ids"])
            state.block_mask(S, S, device)
        torch.cuda.synchronize()
        res["block_mask_build_s"] = round((time.perf_counter() - t0) / len(batches), 5)
    # Last: the mixed-precision optimizer's hooks would otherwise take the gradients from the plain AdamW.
    opt.remove_hooks()
    timeit("full_step_adamw_on_bf16_weights", lambda b: train_step(sm, pure_bf16, [b], clip_grad=1.0))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "profile.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
