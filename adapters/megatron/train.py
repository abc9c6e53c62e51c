"""`python -m adapters.megatron.train`: train a Megatron-Core GPTModel / LLaVAModel on litdata shards.

    torchrun --nproc-per-node 2 -m adapters.megatron.train --data shards/ --tensor-model-parallel-size 2 \
        --model tiny --steps 20 --log-json run.jsonl

Writes one JSON line per step (rank 0): step, loss, response_loss, instruction_loss, supervised_tokens,
weight_sum, tokens_per_s, step_time_s (and tflops on GPU). gloo on CPU, nccl on GPU. Data parallel size is
world_size / TP; global batch = micro batch x micro-batches per step x DP.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

# Megatron-Core warns on import that Transformer Engine and Apex are absent; the adapter does not use them.
warnings.filterwarnings("ignore", message=".*(Transformer Engine|Apex).*")

from adapters.megatron.models import (
    PRESETS,
    ModelArgs,
    build_gpt,
    build_llava,
    count_parameters,
    preset,
    vision_tokens,
)

if TYPE_CHECKING:
    from litdata.images.tokens import ImageTokenRule

OVERRIDES = ("num_layers", "hidden_size", "num_attention_heads", "ffn_hidden_size", "num_query_groups",
             "seq_length", "img_size", "patch_dim", "vit_num_layers", "vit_hidden_size", "vit_num_attention_heads",
             "make_vocab_size_divisible_by", "rotary_base", "init_method_std")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m adapters.megatron.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="compiled output folder, a tar, a brace pattern")
    p.add_argument("--model", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--log-json", help="append one JSON line per step here")
    p.add_argument("--tensor-model-parallel-size", type=int, default=1)
    p.add_argument("--micro-batch-size", type=int, default=2)
    p.add_argument("--global-batch-size", type=int, help="default: micro batch x DP (no accumulation)")
    types = {f.name: float if "float" in str(f.type) else int for f in dataclasses.fields(ModelArgs)}
    for name in OVERRIDES:
        p.add_argument("--" + name.replace("_", "-"), type=types[name],
                       help="default: the manifest's seq_len" if name == "seq_length" else "override the preset")
    p.add_argument("--bf16", action="store_true", default=None, help="override the preset")
    p.add_argument("--no-swiglu", dest="swiglu", action="store_false", default=None)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-lr", type=float, default=0.0)
    p.add_argument("--lr-warmup-iters", type=int, default=0, help="linear warmup from 0 over this many steps")
    p.add_argument("--lr-decay-style", default="constant",
                   choices=("constant", "linear", "cosine", "inverse-square-root"))
    p.add_argument("--lr-decay-iters", type=int, help="default: --steps")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--clip-grad", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--mode", choices=("lit", "vit"), default="lit", help="re-weigh the stored classes")
    p.add_argument("--weight", action="append", metavar="CLASS=W", help="per-class weight override")
    p.add_argument("--vocab-size", type=int, help="default: the manifest's tokenizer vocab size")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--skip-corrupt", action="store_true",
                   help="skip a corrupt shard (counted in each step's log line) instead of stopping")
    p.add_argument("--attention-backend", choices=("auto", "flex", "sdpa"), default="auto")
    p.add_argument("--image-mean", type=float, nargs=3, metavar=("R", "G", "B"), help="default: CLIP's")
    p.add_argument("--image-std", type=float, nargs=3, metavar=("R", "G", "B"), help="default: CLIP's")
    p.add_argument("--image-aspect", choices=("pad", "resize"), default="pad",
                   help="pad to a square with the mean colour (LLaVA-1.5) or stretch")
    p.add_argument("--save", help="checkpoint folder")
    p.add_argument("--save-interval", type=int, default=0)
    p.add_argument("--load", help="resume from this checkpoint folder")
    return p.parse_args(argv)


def init_distributed(tp: int, seed: int) -> tuple[torch.device, Any, int, int]:
    import os

    from megatron.core import parallel_state

    from adapters.megatron import cpu_shims

    on_gpu = torch.cuda.is_available()
    cpu_shims.apply()
    if not torch.distributed.is_initialized():
        if "RANK" not in os.environ:  # plain `python -m`: a world of one
            os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                              MASTER_PORT=os.environ.get("MASTER_PORT", "29500"))
        if on_gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if on_gpu else "gloo")
    world = torch.distributed.get_world_size()
    if world % tp:
        raise ValueError(f"world size {world} is not a multiple of --tensor-model-parallel-size {tp}")
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)
    torch.manual_seed(seed)
    if on_gpu:
        from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

        model_parallel_cuda_manual_seed(seed)
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    return device, parallel_state.get_data_parallel_group(), parallel_state.get_data_parallel_rank(), world // tp


def model_flops_per_token(args: Any, n_params: int) -> float:
    """Training FLOPs per token: 6 N (matmuls, forward + backward) + 12 L h s / 2 (causal attention scores
    and values, forward + backward; the /2 counts only the causal half; document masks skip more, which we
    do not credit)."""
    return 6.0 * n_params + 6.0 * args.num_layers * args.hidden_size * args.seq_length


def lr_scheduler(optimizer: Any, a: argparse.Namespace) -> Any:
    """Megatron's own `OptimizerParamScheduler`, stepped once per iteration (Megatron counts samples; the
    schedule is the same): warmup from 0, then the decay style down to --min-lr; the no-decay parameter group
    keeps weight decay 0 through its `wd_mult`."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    decay = a.lr_decay_iters or a.steps
    if a.lr_warmup_iters >= decay:
        raise ValueError(f"--lr-warmup-iters {a.lr_warmup_iters} must be below --lr-decay-iters {decay}")
    return OptimizerParamScheduler(
        optimizer, init_lr=0.0 if a.lr_warmup_iters else a.lr, max_lr=a.lr, min_lr=a.min_lr,
        lr_warmup_steps=a.lr_warmup_iters, lr_decay_steps=decay, lr_decay_style=a.lr_decay_style,
        start_wd=a.weight_decay, end_wd=a.weight_decay, wd_incr_steps=decay, wd_incr_style="constant",
    )


def images_for(a: argparse.Namespace, margs: ModelArgs) -> Any:
    """How the loader decodes images for the ViT (None for a text-only model)."""
    from adapters.megatron.images import ImageSpec

    if not margs.vision:
        return None
    given = {k: tuple(v) for k, v in (("mean", a.image_mean), ("std", a.image_std)) if v is not None}
    return ImageSpec(size=margs.img_size, pad_to_square=a.image_aspect == "pad", **given)


def check_image_tokens(data: str, compiled: int, margs: Any) -> None:
    """The shards reserve `image_tokens` positions per image placeholder; the ViT must emit exactly that many."""
    emitted = vision_tokens(margs)
    if compiled != emitted:
        side = round(compiled ** 0.5) * margs.patch_dim
        hint = f" or --img-size {side}" if round(compiled ** 0.5) ** 2 == compiled else ""
        raise ValueError(
            f"{data}: the shards were compiled with image_tokens={compiled} but the ViT ({margs.img_size}px "
            f"images, patch {margs.patch_dim}, class token dropped) emits {emitted} tokens per image; recompile "
            f"with --image-tokens {emitted}{hint}"
        )


def check_image_rule(data: str, rule: ImageTokenRule, margs: Any) -> None:
    """LLaVAModel gives image i `num_image_tiles[i] x img_seq_len` embeddings: fixed rules need image_tokens ==
    img_seq_len, tile rules per_tile == img_seq_len (the loader cuts the tiles and passes their count); other
    per-image counts (processor rules such as llava_next or qwen2_vl) cannot be expressed that way."""
    if rule.fixed is not None:  # fixed:N, or a processor whose count is the same for every image (llava)
        check_image_tokens(data, rule.fixed, margs)
    elif rule.tiled:
        emitted = vision_tokens(margs)
        if rule.per_tile != emitted:
            raise ValueError(f"{data}: the shards were compiled with {rule.spec} but the ViT ({margs.img_size}px, "
                             f"patch {margs.patch_dim}) emits {emitted} tokens per tile; recompile with per_tile={emitted}")
    else:
        raise ValueError(f"{data}: image token rule {rule.spec} is not supported by the Megatron trainer: LLaVAModel "
                         "expands an image to tiles x img_seq_len embeddings; compile with fixed:N or tiles:...")


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    from megatron.core import parallel_state

    from adapters.megatron import checkpoint
    from adapters.megatron.data import PackedShardDataset
    from adapters.megatron.loader import build_loader
    from adapters.megatron.optimizer import MixedPrecisionAdamW
    from adapters.megatron.reweigh import Reweigh
    from adapters.megatron.shards import resolve_shards
    from adapters.megatron.step import StepModel, to_device, train_step
    from litdata.classes import parse_weight_overrides

    tp = a.tensor_model_parallel_size
    shardset = resolve_shards(a.data)  # checked before any process group exists: fail fast and clearly
    margs = preset(a.model, **{k: getattr(a, k) for k in (*OVERRIDES, "bf16", "swiglu")})
    if a.seq_length is None and shardset.seq_len is not None:
        margs = dataclasses.replace(margs, seq_length=shardset.seq_len)
    if margs.vision:
        rule = shardset.image_rule()
        if shardset.image_token_id is None or rule is None:
            raise ValueError(f"{a.data}: the manifest names no image_token_id; llava needs one")
        check_image_rule(a.data, rule, margs)
    device, dp_group, dp_rank, dp_size = init_distributed(tp, a.seed)
    accumulate = 1
    if a.global_batch_size:
        if a.global_batch_size % (a.micro_batch_size * dp_size):
            raise ValueError(f"--global-batch-size {a.global_batch_size} is not a multiple of micro x DP")
        accumulate = a.global_batch_size // (a.micro_batch_size * dp_size)

    reweigh = Reweigh(mode=a.mode, overrides=parse_weight_overrides(a.weight))
    image_spec = images_for(a, margs)
    dataset = PackedShardDataset(a.data, dp_rank=dp_rank, dp_size=dp_size, seed=a.seed, epochs=None,
                                 reweigh=reweigh, image_spec=image_spec, skip_corrupt=a.skip_corrupt)
    vocab = a.vocab_size or dataset.shardset.vocab_size
    if not vocab:
        raise ValueError(f"{a.data}: no tokenizer vocab_size in a manifest; pass --vocab-size")
    on_gpu = device.type == "cuda"
    if margs.vision:
        image_token_index = dataset.shardset.image_token_id
        model, state = build_llava(margs, vocab_size=int(vocab), tp_size=tp, on_gpu=on_gpu,
                                   image_token_index=int(image_token_index))
        sm_kw = {"image_token_index": int(image_token_index), "image_tokens": int(model.img_seq_len)}
    else:
        model, state = build_gpt(margs, vocab_size=int(vocab), tp_size=tp, on_gpu=on_gpu)
        sm_kw = {}
    state.backend = a.attention_backend
    model.to(device)
    sm = StepModel(model=model, state=state, **sm_kw)
    optimizer = MixedPrecisionAdamW(model, lr=a.lr, weight_decay=a.weight_decay, betas=(0.9, 0.95))
    scheduler = lr_scheduler(optimizer, a)
    loader = build_loader(dataset, micro_batch_size=a.micro_batch_size, seq_len=margs.seq_length,
                          num_workers=a.num_workers)
    start = 0
    if a.load:
        resumed = checkpoint.load(a.load, model=model, optimizer=optimizer)
        loader.load_state_dict(resumed["loader"])
        start = resumed["step"]
        scheduler.load_state_dict(resumed["extra"]["scheduler"])

    if a.save and torch.distributed.get_rank() == 0:
        from adapters.megatron.evaluate import TRAIN_ARGS, train_args_record

        Path(a.save).mkdir(parents=True, exist_ok=True)
        (Path(a.save) / TRAIN_ARGS).write_text(json.dumps(train_args_record(a, margs, int(vocab)), indent=1) + "\n")

    n_params = count_parameters(model) * tp  # every TP rank holds 1/TP of the (mostly) sharded weights
    flops_per_token = model_flops_per_token(margs, n_params) if on_gpu else None
    rank0 = torch.distributed.get_rank() == 0
    with open(a.log_json, "a") if (a.log_json and rank0) else contextlib.nullcontext() as log:
        batches = iter(loader)
        for step in range(start + 1, a.steps + 1):
            t0 = time.perf_counter()
            micro = [to_device(next(batches), device) for _ in range(accumulate)]
            lr = optimizer.param_groups[0]["lr"]
            report = train_step(sm, optimizer, micro, dp_group=dp_group, clip_grad=a.clip_grad)
            scheduler.step(1)
            if on_gpu:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            tokens = accumulate * a.micro_batch_size * margs.seq_length * dp_size
            line = {"step": step, **report, "lr": lr, "tokens_per_s": tokens / dt, "step_time_s": dt}
            if a.skip_corrupt:
                skipped = loader.stats
                line.update(shards_skipped=skipped.shards_skipped, sequences_skipped=skipped.sequences_skipped)
            if flops_per_token:
                line["tflops"] = flops_per_token * tokens / dt / 1e12 / (tp * dp_size)  # per GPU
            if log:
                log.write(json.dumps(line) + "\n")
                log.flush()
            if rank0:
                print(json.dumps(line), flush=True)
            if a.save and a.save_interval and step % a.save_interval == 0:
                checkpoint.save(a.save, step=step, model=model, optimizer=optimizer,
                                loader_state=loader.state_dict(), extra={"scheduler": scheduler.state_dict()})
    parallel_state.destroy_model_parallel()
    torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
