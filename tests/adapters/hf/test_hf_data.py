"""The Hugging Face adapter's data side: split, order, resume, the padding-free batch layout, the export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from adapters.hf.collator import PackedCollator, expand
from adapters.hf.dataset import LitShardDataset
from adapters.hf.loader import LitDataLoader
from adapters.hf.reader import CorruptShardError
from litdata.shards.reader import FormatProblem, image_token_counts
from tests.helpers.compile import compile_cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo4(tmp_path_factory) -> Path:
    """The demo at seq 512 with 4 tokens per image (a tiny LLaVA's count): 112 sequences, all with images."""
    out = tmp_path_factory.mktemp("hfdemo") / "out"
    assert compile_cli("demo", "--out", out, "--seq-len", 512, "--image-tokens", 4, "--no-progress") == 0
    return out


@pytest.fixture(scope="module")
def text_only(tmp_path_factory) -> Path:
    """The demo's 20 text-only records, compiled at seq 2048 (one is too long for it)."""
    tmp = tmp_path_factory.mktemp("hftext")
    records = [r for r in json.loads((ROOT / "litdata/demo/data/llava_demo.json").read_text()) if "image" not in r]
    (tmp / "text.json").write_text(json.dumps(records))
    assert compile_cli("compile", tmp / "text.json", "--out", tmp / "out", "--seq-len", 2048, "--image-tokens", 4,
                       "--no-progress") == 0
    return tmp / "out"


def keys(samples):
    return [s.key for s in samples]


def test_ranks_get_disjoint_sequences_and_together_every_one(demo4):
    everything = keys(LitShardDataset(demo4, epochs=1, seed=3))
    assert sorted(everything) == sorted(set(everything)) and len(everything) == 112
    per_rank = [keys(LitShardDataset(demo4, epochs=1, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in per_rank] == [38, 38, 38]  # 112 -> 114: two sequences of epoch 0 again
    assert [k for i in range(38) for k in (per_rank[0][i], per_rank[1][i], per_rank[2][i])][:112] == everything
    assert per_rank[1][-1] == everything[0] and per_rank[2][-1] == everything[1]


def test_batches_are_the_same_for_any_number_of_loader_workers(demo4):
    def batches(workers):
        ds = LitShardDataset(demo4, batch_size=3, rank=1, world_size=2, epochs=1, seed=5)
        return list(LitDataLoader(ds, collate_fn=keys, num_workers=workers))

    assert batches(0) == batches(2) == batches(3)
    assert len(batches(0)) == 19  # 56 sequences in batches of 3


def test_shuffle_depends_on_the_seed_and_the_epoch(demo4):
    first = keys(LitShardDataset(demo4, epochs=2, seed=0))
    assert first[:112] != first[112:] and sorted(first[:112]) == sorted(first[112:])
    assert keys(LitShardDataset(demo4, epochs=1, seed=1)) != first[:112]
    assert keys(LitShardDataset(demo4, epochs=1, shuffle=False))[:3] == ["000000000", "000000001", "000000002"]


def test_loader_state_resumes_at_the_next_batch(demo4):
    def loader():
        return LitDataLoader(LitShardDataset(demo4, batch_size=2, seed=7), collate_fn=keys, num_workers=2)

    uninterrupted = loader()
    reference = [b for _, b in zip(range(6), uninterrupted)]
    first = loader()
    it = iter(first)
    assert [next(it) for _ in range(4)] == reference[:4]
    state = json.loads(json.dumps(first.state_dict()))  # a state survives JSON (no pickles in checkpoints)
    assert state["batches"] == 4
    resumed = loader()
    resumed.load_state_dict(state)
    assert [b for _, b in zip(range(2), resumed)] == reference[4:]


def test_a_state_from_another_split_is_refused(demo4):
    state = LitShardDataset(demo4, batch_size=2).state_dict()
    other = LitShardDataset(demo4, batch_size=4)
    with pytest.raises(ValueError, match="batch_size=2"):
        other.load_state_dict(state)


def text_view(sample):
    """The sample with its placeholders left as plain tokens (what a text-only model would read)."""
    return replace(sample, placeholders=sample.placeholders[:0], image_tokens=sample.image_tokens[:0], images=())


def test_batch_layout_is_datacollatorwithflattening_over_the_documents(demo4):
    from transformers import DataCollatorWithFlattening

    samples = [text_view(s) for s in LitShardDataset(demo4, epochs=1, shuffle=False)][:2]
    ours = PackedCollator()(samples)
    docs = [{"input_ids": s.tokens[a:b].tolist()} for s in samples for a, b in zip(s.cu_seqlens, s.cu_seqlens[1:])]
    theirs = DataCollatorWithFlattening(return_flash_attn_kwargs=True)(docs)
    for name in ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k"):
        assert type(ours[name]) is type(theirs[name]), name
        if isinstance(ours[name], torch.Tensor):
            assert ours[name].dtype == theirs[name].dtype and torch.equal(ours[name], theirs[name]), name
        else:
            assert ours[name] == theirs[name], name
    weights = torch.from_numpy(np.concatenate([s.weights for s in samples]))[None]
    assert torch.equal(ours["loss_weights"], weights)
    assert torch.equal(ours["labels"], torch.where(weights > 0, ours["input_ids"], -100))
    starts = ours["cu_seq_lens_q"][:-1].long()
    assert (ours["labels"][0, starts] == -100).all() and (theirs["labels"][0, starts] == -100).all()
    assert "attention_mask" not in ours and ours["use_cache"] is False


def test_each_placeholder_becomes_its_count_of_image_tokens(demo4):
    from transformers import CLIPImageProcessor

    sample = next(iter(LitShardDataset(demo4, shuffle=False)))
    sample = replace(sample, image_tokens=np.arange(2, 2 + len(sample.images), dtype=np.int32))  # unequal counts
    n, images = len(sample.tokens), len(sample.images)
    processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    batch = PackedCollator(image_processor=processor, image_token_id=99)([sample])
    ids, labels, w = batch["input_ids"][0], batch["labels"][0], batch["loss_weights"][0]
    assert len(ids) == n + int((sample.image_tokens - 1).sum())
    assert int((ids == 99).sum()) == int(sample.image_tokens.sum())
    assert (labels[ids == 99] == -100).all() and (w[ids == 99] == 0).all()
    assert batch["pixel_values"].shape == (images, 3, 28, 28)
    # The text around the images is unchanged, and each document grew by its own images' counts.
    assert torch.equal(ids[ids != 99], torch.from_numpy(np.delete(sample.tokens, sample.placeholders)).long())
    exp = expand(sample, 99)
    doc_of = np.searchsorted(sample.cu_seqlens, sample.placeholders, side="right") - 1
    grow = np.bincount(doc_of, weights=sample.image_tokens - 1, minlength=len(sample.cu_seqlens) - 1)
    assert np.diff(exp.cu_seqlens).tolist() == (np.diff(sample.cu_seqlens) + grow).astype(int).tolist()
    assert batch["cu_seq_lens_q"].tolist() == exp.cu_seqlens.tolist()


def test_images_without_an_image_processor_are_refused(demo4):
    sample = next(iter(LitShardDataset(demo4, shuffle=False)))
    with pytest.raises(ValueError, match="image_processor"):
        PackedCollator()([sample])


def test_per_image_counts_follow_the_shared_contract():
    assert image_token_counts({}, 2, 576).tolist() == [576, 576]
    assert image_token_counts({"image_tokens.npy": np.array([3, 7], np.int32)}, 2, 576).tolist() == [3, 7]
    for bad in ({}, {"image_tokens.npy": np.array([3], np.int32)}, {"image_tokens.npy": np.array([3, -1], np.int32)},
                {"image_tokens.npy": np.array([3, 7], np.int64)}):
        with pytest.raises(FormatProblem, match="image_tokens.npy"):
            image_token_counts(bad, 2, None)


def test_a_damaged_shard_is_named(demo4, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(demo4, bad)
    shard = bad / "shard-000000.tar"
    data = bytearray(shard.read_bytes())
    data[5000] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="shard-000000.tar.*sha256"):
        list(LitShardDataset(bad, epochs=1))


def test_export_writes_documents_that_datasets_loads(text_only, tmp_path):
    import datasets

    out = tmp_path / "text.parquet"
    run = subprocess.run([sys.executable, "-m", "adapters.hf.export", text_only, out], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    table = datasets.load_dataset("parquet", data_files=str(out), split="train")
    samples = list(LitShardDataset(text_only, epochs=1, shuffle=False))
    docs = [(s, a, b) for s in samples for a, b in zip(s.cu_seqlens, s.cu_seqlens[1:])]
    manifest = json.loads((text_only / "manifest.json").read_text())
    assert len(table) == len(docs) == manifest["counts"]["documents_written"] >= 15
    assert table.column_names == ["id", "input_ids", "labels", "attention_mask", "loss_weights"]
    for row, (s, a, b) in zip(table, docs):
        assert row["input_ids"] == s.tokens[a:b].tolist()
        assert row["loss_weights"] == pytest.approx(s.weights[a:b].tolist())
        assert row["labels"] == [t if w > 0 else -100 for t, w in zip(row["input_ids"], row["loss_weights"])]
        assert row["attention_mask"] == [1] * (b - a) and row["labels"][0] == -100
    assert sorted(table["id"]) == sorted(d["id"] for s in samples for d in s.meta["documents"])


def test_export_refuses_documents_with_images_unless_told_to_skip_them(demo4, tmp_path):
    from adapters.hf.export import export_parquet, main

    out = tmp_path / "x.parquet"
    run = subprocess.run([sys.executable, "-m", "adapters.hf.export", demo4, out], capture_output=True, text=True)
    assert run.returncode == 1 and "holds images" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    assert main([str(demo4), str(out), "--skip-image-documents"]) == 0
    import pyarrow.parquet as pq

    report = export_parquet(demo4, out, skip_image_documents=True)
    manifest = json.loads((demo4 / "manifest.json").read_text())
    assert report.skipped_image_documents > 0 and pq.read_table(out).num_rows == report.documents > 0
    assert report.documents + report.skipped_image_documents == manifest["counts"]["documents_written"]
