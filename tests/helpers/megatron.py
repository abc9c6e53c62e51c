"""Shared helpers for the Megatron adapter tests: process groups on CPU and batches built per the contract."""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from litdata.classes import TokenClass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_parallel(rank: int = 0, world_size: int = 1, tp: int = 1, port: int | None = None) -> None:
    """gloo process group + Megatron model-parallel groups (idempotent for one process)."""
    warnings.filterwarnings("ignore", message=".*Transformer Engine.*")
    from megatron.core import parallel_state

    from adapters.megatron import cpu_shims

    cpu_shims.apply()
    if not torch.distributed.is_initialized():
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port or free_port())
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=tp)


def compile_demo(tmp_path_factory, name: str, *, seq_len: int, image_tokens: int) -> Path:
    """The bundled demo compiled at `seq_len` with `image_tokens` slots per image placeholder."""
    from litdata.cli import main

    out = tmp_path_factory.mktemp(name) / "demo"
    assert main(["demo", "--out", str(out), "--seq-len", str(seq_len), "--image-tokens", str(image_tokens),
                 "--no-progress"]) == 0
    return out


def gathered_grads(model: torch.nn.Module, tp: int) -> dict[str, torch.Tensor]:
    """Every parameter's full gradient by name: tensor-parallel shards all-gathered along their partition dim."""
    from megatron.core import parallel_state

    group = parallel_state.get_tensor_model_parallel_group()
    grads = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        g = p.grad.detach()
        if getattr(p, "tensor_model_parallel", False) and tp > 1:
            parts = [torch.empty_like(g) for _ in range(tp)]
            torch.distributed.all_gather(parts, g.contiguous(), group=group)
            g = torch.cat(parts, dim=p.partition_dim)
        grads[name] = g
    return grads


def make_batch(
    documents: Sequence[Sequence[tuple[int, int, float]]], seq_len: int, pad_id: int = 0
) -> dict[str, torch.Tensor]:
    """A batch per the contract from rows of documents; each document is a list of (token, class, weight)
    and the first token of every document gets weight 0 as the compiler guarantees."""
    b = len(documents)
    tokens = np.full((b, seq_len), pad_id, np.int64)
    weights = np.zeros((b, seq_len), np.float32)
    classes = np.full((b, seq_len), 255, np.uint8)
    docs = np.full((b, seq_len), -1, np.int32)
    pos = np.tile(np.arange(seq_len), (b, 1))
    for r, row in enumerate(documents):
        i = 0
        for d, doc in enumerate(row):
            for j, (tok, cls, w) in enumerate(doc):
                tokens[r, i], classes[r, i], weights[r, i] = tok, cls, (0.0 if j == 0 else w)
                docs[r, i], pos[r, i] = d, j
                i += 1
        pos[r, i:] = np.arange(seq_len - i)
    labels = np.zeros_like(tokens)
    labels[:, :-1] = tokens[:, 1:]
    loss_mask = np.zeros_like(weights)
    loss_mask[:, :-1] = weights[:, 1:]
    label_classes = np.full_like(classes, 255)
    label_classes[:, :-1] = classes[:, 1:]
    return {
        "tokens": torch.from_numpy(tokens),
        "labels": torch.from_numpy(labels),
        "loss_mask": torch.from_numpy(loss_mask),
        "label_classes": torch.from_numpy(label_classes),
        "position_ids": torch.from_numpy(pos),
        "document_ids": torch.from_numpy(docs),
    }


def random_document(rng: np.random.Generator, length: int, vocab: int,
                    cls: TokenClass = TokenClass.RESPONSE, weight: float = 1.0) -> list[tuple[int, int, float]]:
    return [(int(t), int(cls), weight) for t in rng.integers(1, vocab, size=length)]


def conversation(rng: np.random.Generator, vocab: int, n_instr: int, n_resp: int,
                 instruction_weight: float) -> list[tuple[int, int, float]]:
    """A markup token, an instruction span, then a response span (weights as LIT would give them)."""
    doc = [(1, int(TokenClass.MARKUP), 0.0)]
    doc += random_document(rng, n_instr, vocab, TokenClass.INSTRUCTION, instruction_weight)
    doc += random_document(rng, n_resp, vocab, TokenClass.RESPONSE, 1.0)
    return doc


def write_synthetic_shards(out: str, *, sequences: int, seq_len: int, vocab: int, seed: int = 0,
                           per_shard: int = 16) -> str:
    """Demo-like shards (DESIGN.md format, no manifest, no images): packed conversations whose responses
    repeat the instruction, so a model can learn them and the loss goes down within a few steps."""
    import io
    import json
    import tarfile
    from pathlib import Path

    rng = np.random.default_rng(seed)
    Path(out).mkdir(parents=True, exist_ok=True)

    def npy(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        return buf.getvalue()

    for shard in range(-(-sequences // per_shard)):
        with tarfile.open(Path(out) / f"shard-{shard:06d}.tar", "w") as tar:
            for i in range(shard * per_shard, min(sequences, (shard + 1) * per_shard)):
                toks, cls, cu = [], [], [0]
                while True:
                    n = int(rng.integers(4, max(5, seq_len // 6)))
                    instr = rng.integers(3, vocab, n)
                    doc = [1, *instr, 2, *instr, 2]  # markup, instruction, markup, response (= instruction), eos
                    if len(toks) + len(doc) > seq_len:
                        break
                    cl = [0] + [int(TokenClass.INSTRUCTION)] * n + [0] + [int(TokenClass.RESPONSE)] * (n + 1)
                    toks += doc
                    cls += cl
                    cu.append(len(toks))
                classes = np.asarray(cls, np.uint8)
                weights = np.isin(classes, (TokenClass.INSTRUCTION, TokenClass.RESPONSE)).astype(np.float32)
                weights[np.asarray(cu[:-1])] = 0.0
                members = {
                    "tokens.npy": npy(np.asarray(toks, np.int32)), "weights.npy": npy(weights),
                    "classes.npy": npy(classes), "cu_seqlens.npy": npy(np.asarray(cu, np.int32)),
                    "json": json.dumps([{"id": f"synthetic-{i}-{d}"} for d in range(len(cu) - 1)]).encode(),
                }
                for suffix, data in members.items():
                    info = tarfile.TarInfo(f"seq{i:06d}.{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return out


def per_token_ce(sm, batch: dict):
    """The training step's own forward (forward_step) on a LLaVA batch, without gradients: CE [b, L] and the
    image-expanded batch."""
    from adapters.megatron.loss import WeightedLoss
    from adapters.megatron.step import expand_batch, forward_step

    sm.model.eval()
    with torch.no_grad():
        ce, _ = forward_step(sm, WeightedLoss(weight_total=torch.tensor(1.0)), iter([batch]), sm.model)
    return ce, expand_batch(batch, image_token_index=sm.image_token_index, image_tokens=sm.image_tokens,
                            max_length=sm.max_length)
