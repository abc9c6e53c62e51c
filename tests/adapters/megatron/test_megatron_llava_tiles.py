"""LLaVAModel on shards compiled with a tile rule: the loader cuts each image into the tiles the compiler counted,
batches carry each image's count and `num_image_tiles`, and document boundaries hold in image-expanded space with
mixed counts (a packed row equals its documents run alone)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("megatron.core")

from adapters.megatron.batch import SequenceArrays, collate
from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import ImageSpec
from adapters.megatron.models import build_llava, preset, vision_tokens
from adapters.megatron.step import StepModel
from tests.helpers.megatron import compile_demo, init_parallel, per_token_ce

SEQ = 512
ARGS = preset("llava-tiny", seq_length=SEQ)  # 56 px tiles, patch 14: 16 tokens per tile
PER_TILE = vision_tokens(ARGS)
RULE = f"tiles:tile=56,max=4,min=1,thumbnail=1,per_tile={PER_TILE}"  # demo images: 1, 3 or 5 tiles


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return compile_demo(tmp_path_factory, "llava_tiles", seq_len=SEQ, image_tokens=RULE)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def llava(demo) -> StepModel:
    cfg = json.loads((demo / "manifest.json").read_text())["config"]
    init_parallel()
    torch.manual_seed(0)
    model, state = build_llava(ARGS, vocab_size=cfg["tokenizer"]["vocab_size"], tp_size=1, on_gpu=False,
                               image_token_index=cfg["image_token_id"])
    return StepModel(model=model, state=state, image_token_index=cfg["image_token_id"], image_tokens=model.img_seq_len)


def sequences(demo) -> list[SequenceArrays]:
    return list(PackedShardDataset(demo, shuffle=False, image_spec=ImageSpec(size=ARGS.img_size)))


def batch_of(seqs: list[SequenceArrays]) -> dict:
    return collate(seqs, seq_len=SEQ, image_tokens=1, image_size=ARGS.img_size)


def expanded(seq: SequenceArrays) -> int:
    return seq.n_tokens + int(seq.image_counts.sum()) - len(seq.image_counts)


def test_loader_cuts_each_image_into_its_counted_tiles(demo):
    seqs = sequences(demo)
    assert {int(t) for s in seqs for t in s.image_tiles} == {1, 3, 5}
    for s in seqs:
        assert len(s.images) == int(s.image_tiles.sum())
        assert s.image_counts.tolist() == (s.image_tiles * PER_TILE).tolist()
        assert expanded(s) <= SEQ
    batch = batch_of(seqs[:3])
    assert batch["num_image_tiles"].tolist() == [int(t) for s in seqs[:3] for t in s.image_tiles]
    assert batch["images"].shape[0] == int(batch["num_image_tiles"].sum())
    # cu_seqlens in expanded space: each row's documents and padding add up to SEQ
    assert int(batch["cu_seqlens"][-1]) == 3 * SEQ


def split_documents(seq: SequenceArrays) -> list[SequenceArrays]:
    """Each document of a packed sequence as a sequence of its own, with its own images, tiles and counts."""
    out, first_image, first_tile = [], 0, 0
    for d in range(len(seq.images_per_doc)):
        a, b, k = int(seq.cu_seqlens[d]), int(seq.cu_seqlens[d + 1]), int(seq.images_per_doc[d])
        tiles = seq.image_tiles[first_image:first_image + k]
        out.append(SequenceArrays(shard=seq.shard, key=f"{seq.key}/{d}", tokens=seq.tokens[a:b],
                                  weights=seq.weights[a:b], classes=seq.classes[a:b],
                                  cu_seqlens=np.array([0, b - a], np.int32), images_per_doc=seq.images_per_doc[d:d + 1],
                                  images=seq.images[first_tile:first_tile + int(tiles.sum())],
                                  image_counts=seq.image_counts[first_image:first_image + k], image_tiles=tiles))
        first_image, first_tile = first_image + k, first_tile + int(tiles.sum())
    return out


def test_packed_row_with_mixed_tile_counts_equals_its_documents_alone(demo, llava):
    seq = next(s for s in sequences(demo) if len(s.images_per_doc) >= 2 and (s.images_per_doc >= 1).all()
               and len(set(s.image_tiles.tolist())) >= 2)
    packed_ce, packed = per_token_ce(llava, batch_of([seq]))
    packed_ce = packed_ce[0]
    offset, weighted_alone = 0, 0.0
    for doc in split_documents(seq):
        ce, alone = per_token_ce(llava, batch_of([doc]))
        n = expanded(doc)
        torch.testing.assert_close(packed_ce[offset:offset + n - 1], ce[0, :n - 1], rtol=1e-4, atol=1e-4)
        weighted_alone += float((ce[0] * alone["loss_mask"][0]).sum())
        offset += n
    assert offset == expanded(seq)
    assert float((packed_ce * packed["loss_mask"][0]).sum()) == pytest.approx(weighted_alone, rel=1e-4)

    # The check can fail: with one fixed count per image the documents' boundaries land in the wrong places.
    wrong = {k: v for k, v in batch_of([seq]).items() if k != "image_token_counts"}
    with pytest.raises(Exception):
        wrong_ce, _ = per_token_ce(llava, wrong)
        torch.testing.assert_close(wrong_ce[0, :offset - 1], packed_ce[:offset - 1], rtol=1e-4, atol=1e-4)


def test_trainer_checks_per_tile_against_the_vit_and_refuses_processor_rules(demo):
    from adapters.megatron.train import check_image_rule, main
    from litdata.images.tokens.hf import ProcessorRule

    with pytest.raises(ValueError, match=r"emits 9 tokens per tile; recompile with per_tile=9"):
        main(["--data", str(demo), "--model", "llava-tiny", "--img-size", "42", "--steps", "1"])
    rule = ProcessorRule(type="qwen2_vl", path="p", patch_size=14, min_pixels=3136, max_pixels=1003520)
    with pytest.raises(ValueError, match="processor:qwen2_vl is not supported by the Megatron trainer"):
        check_image_rule("d", rule, ARGS)
