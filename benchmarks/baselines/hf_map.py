"""The LLaVA tokenize-and-mask job as a batched `datasets.Dataset.map`, the way LLaMA-Factory / TRL / Axolotl
preprocess: one tokenizer call per batch for every string the masking needs, then the same arithmetic as
`preprocess_v1` (benchmarks/baselines/llava.py), so both produce identical input_ids and labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.baselines.llava import (
    DEFAULT_IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
    SEP,
    SEP2,
    _tokenizers_at_least_0_14,
    mask_targets,
    preprocess_multimodal,
    vicuna_prompt,
)


def mask_queries(conversation: str) -> list[str]:
    """Every string whose length `mask_targets` asks for, in the order its loop asks (same break rules)."""
    sep = SEP + "ASSISTANT" + ": "
    out = []
    for rou in conversation.split(SEP2):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        out += [rou, parts[0] + sep]
    return out


def _join_chunks(bos: int, chunks: list[list[int]]) -> list[int]:
    """`tokenizer_image_token` with a BOS-adding tokenizer: BOS, then the chunks' tokens with one
    IMAGE_TOKEN_INDEX between consecutive chunks."""
    ids = [bos]
    for k, c in enumerate(chunks):
        if k:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(c)
    return ids


def preprocess_batch(batch: dict[str, list], *, tokenizer: Any, model_max_length: int) -> dict[str, list]:
    bos = tokenizer.bos_token_id
    non_legacy = getattr(tokenizer, "legacy", True) is False and _tokenizers_at_least_0_14()  # as preprocess_v1
    prompts, queries, flags = [], [], []
    for convs, has_image in zip(batch["conversations"], batch["has_image"]):
        conversation = vicuna_prompt(preprocess_multimodal(convs) if has_image else convs)
        prompts.append(conversation)
        queries.append(mask_queries(conversation))
        flags.append(has_image)
    # One tokenizer call for every chunk of every string of the batch (the point of batched=True).
    texts = [t for p, q in zip(prompts, queries) for t in (p, *q)]
    has = [h for h, q in zip(flags, queries) for _ in range(1 + len(q))]
    spans, chunks = [], []
    for t, h in zip(texts, has):
        parts = t.split(DEFAULT_IMAGE_TOKEN) if h else [t]
        spans.append((len(chunks), len(chunks) + len(parts)))
        chunks.extend(parts)
    ids = tokenizer(chunks, add_special_tokens=False)["input_ids"]
    out_ids, out_labels, out_mismatch = [], [], []
    k = 0
    for conversation, q, h in zip(prompts, queries, flags):
        s, e = spans[k]
        full = _join_chunks(bos, ids[s:e])
        if not h:
            full = full[:model_max_length]
        lengths = {}
        for j, text in enumerate(q, start=1):
            s, e = spans[k + j]
            lengths[text] = 1 + sum(len(c) for c in ids[s:e]) + (e - s - 1)
        k += 1 + len(q)
        ex = mask_targets(conversation, np.asarray(full, dtype=np.int64), lengths.__getitem__, model_max_length,
                          non_legacy)
        out_ids.append(ex.input_ids)
        out_labels.append(ex.labels)
        out_mismatch.append(ex.mismatch)
    return {"input_ids": out_ids, "labels": out_labels, "mismatch": out_mismatch}


def records_dataset(records: list[dict]):
    """A `datasets.Dataset` of the records' conversations (the `image` field's type varies, so it is reduced to a
    flag, which is all the text preprocessing needs)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "conversations": [[{"from": t["from"], "value": t["value"]} for t in r["conversations"]] for r in records],
            "has_image": ["image" in r for r in records],
        }
    )


def map_dataset(
    ds, tokenizer: Any, *, model_max_length: int = 2048, batch_size: int = 1000, num_proc: int | None = None
):
    """`Dataset.map(batched=True)` kept in memory, with no cache to read back (so every run does the work)."""
    return ds.map(
        preprocess_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        fn_kwargs={"tokenizer": tokenizer, "model_max_length": model_max_length},
        remove_columns=ds.column_names,
        keep_in_memory=True,
        load_from_cache_file=False,
        desc=None,
    )
