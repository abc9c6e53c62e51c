"""adapters/energon: a litdata folder read through Megatron-Energon with `LitdataTaskEncoder` gives exactly the
sample and batch types of Megatron-LM's `examples/multimodal` (plus float `loss_weights`), with labels, image
tiles and image-expanded document boundaries that match the shards, and resumes through Energon's saved state.

Checked with megatron-energon 7.4.1 and megatron-core 0.16.1 on CPU; the example itself (which needs
`megatron.training` and Transformer Engine for THD packing) is not run: see the README's Energon section.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

energon = pytest.importorskip("megatron.energon")

from megatron.energon.errors import FatalSampleError

from adapters.energon import (
    IGNORE_INDEX,
    ImageTaskBatchPacked,
    ImageTaskSample,
    ImageTaskSamplePacked,
    ImageTransform,
    LitdataTaskEncoder,
    LitImageTaskBatchPacked,
    LitImageTaskSamplePacked,
    SampleError,
)
from adapters.energon.loss import WEIGHT_SCALE, weighted_loss
from adapters.megatron.reweigh import Reweigh
from litdata.classes import TokenClass
from litdata.shards.energon import EnergonShard, write_nv_meta
from litdata.shards.schema import FORMAT_NAME

DEMO_IMAGE_TOKENS = 576  # the demo's default --image-tokens
TILE = 28  # small tiles keep the image transform cheap; the pixel size does not change any token count

# The dataclass declarations of Megatron-LM examples/multimodal/dataset_helpers.py (commit 00caa53a), as
# (field, annotation) in declaration order, copied from that file's source.
EXAMPLE_FIELDS = {
    "ImageTaskSample": [
        ("__key__", "str"),
        ("__restore_key__", "Tuple[Union[str, int, tuple], ...]"),
        ("__subflavor__", "Dict"),
        ("__subflavors__", "Dict"),
        ("imgs", "List[torch.Tensor]"),
        ("num_tiles", "List[int]"),
        ("tokens", "torch.Tensor"),
        ("total_len", "int"),
        ("labels", "torch.Tensor"),
    ],
    "ImageTaskSamplePacked": [
        ("__key__", "str"),
        ("__restore_key__", "Tuple[Union[str, int, tuple], ...]"),
        ("__subflavor__", "Dict"),
        ("__subflavors__", "Dict"),
        ("tokens", "torch.Tensor"),
        ("labels", "torch.Tensor"),
        ("imgs", "List[torch.Tensor]"),
        ("num_tiles", "List[int]"),
        ("max_length", "int"),
        ("cu_lengths", "List[int]"),
    ],
    "ImageTaskBatchPacked": [
        ("__key__", "List[str]"),
        ("__restore_key__", "Tuple[Union[str, int, tuple], ...]"),
        ("__subflavor__", "Dict"),
        ("__subflavors__", "List[Dict]"),
        ("tokens", "torch.Tensor"),
        ("labels", "torch.Tensor"),
        ("imgs", "torch.Tensor"),
        ("num_tiles", "List[List[int]]"),
        ("max_lengths", "List[int]"),
        ("cu_lengths", "List[List[int]]"),
    ],
}


def _encoder(folder: Path, **options) -> LitdataTaskEncoder:
    options = {"num_image_embeddings_per_tile": DEMO_IMAGE_TOKENS, "img_h": TILE, "img_w": TILE, **options}
    return LitdataTaskEncoder(folder, **options)


def _dataset(folder: Path, encoder: LitdataTaskEncoder, *, batch_size: int | None, workers: int = 0, **kw):
    options = {"shuffle_buffer_size": None, "max_samples_per_sequence": None, "repeat": False, **kw}
    return energon.get_train_dataset(
        folder,
        batch_size=batch_size,
        worker_config=energon.WorkerConfig.default_worker_config(workers),
        task_encoder=encoder,
        **options,
    )


def _samples(folder: Path, **options) -> list[LitImageTaskSamplePacked]:
    return list(energon.get_loader(_dataset(folder, _encoder(folder, **options), batch_size=None)))


@pytest.fixture(scope="module")
def demo_samples(demo_out: Path) -> list[LitImageTaskSamplePacked]:
    return _samples(demo_out)


@pytest.fixture(scope="module")
def stored(demo_out: Path) -> dict[str, dict]:
    from tests.helpers.compile import read_samples

    return {s["__key__"]: s for shard in sorted(demo_out.glob("shard-*.tar")) for s in read_samples(shard)}


# ---- the types ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ImageTaskSample, ImageTaskSamplePacked, ImageTaskBatchPacked])
def test_the_types_declare_the_examples_fields_in_its_order(cls) -> None:
    assert list(cls.__annotations__.items()) == EXAMPLE_FIELDS[cls.__name__]
    assert dataclasses.is_dataclass(cls)


def test_the_litdata_types_add_only_loss_weights() -> None:
    pairs = ((LitImageTaskSamplePacked, ImageTaskSamplePacked), (LitImageTaskBatchPacked, ImageTaskBatchPacked))
    for lit, base in pairs:
        assert issubclass(lit, base)
        added = [f.name for f in dataclasses.fields(lit)][len(dataclasses.fields(base)) :]
        assert added == ["loss_weights"]


# ---- the demo through Energon -----------------------------------------------------------------------------------
def test_every_sequence_of_the_demo_comes_once_as_the_examples_packed_sample(demo_samples, stored) -> None:
    assert sorted(s.__key__ for s in demo_samples) == sorted(stored)
    for sample in demo_samples:
        raw = stored[sample.__key__]
        n, images = len(raw["tokens.npy"]), sum(d["images"] for d in json.loads(raw["json"])["documents"])
        assert isinstance(sample, ImageTaskSamplePacked)
        assert sample.tokens.shape == sample.labels.shape == sample.loss_weights.shape == (n,)
        assert sample.tokens.dtype == sample.labels.dtype == torch.int64 and sample.loss_weights.dtype == torch.float32
        assert sample.num_tiles == [1] * images  # no tiling: one tile per image
        assert len(sample.imgs) == images and all(img.shape == (3, TILE, TILE) for img in sample.imgs)
        assert sample.cu_lengths.dtype == torch.int32 and sample.__subflavor__ is None
    assert any(s.imgs for s in demo_samples) and any(len(s.cu_lengths) > 2 for s in demo_samples)


def test_labels_are_the_tokens_where_the_weight_is_positive_else_ignore(demo_samples, stored) -> None:
    for sample in demo_samples:
        tokens, weights = stored[sample.__key__]["tokens.npy"], stored[sample.__key__]["weights.npy"]
        assert np.array_equal(sample.tokens.numpy(), tokens)
        # Same position, no shift: the example's labels[i] is the target token i (get_batch shifts them later).
        assert np.array_equal(sample.labels.numpy(), np.where(weights > 0, tokens, IGNORE_INDEX))
        assert np.array_equal(sample.loss_weights.numpy(), weights)


def test_cu_lengths_are_the_image_expanded_document_boundaries(demo_samples, stored) -> None:
    for sample in demo_samples:
        docs = json.loads(stored[sample.__key__]["json"])["documents"]
        lengths = [d["tokens"] + d["images"] * (DEMO_IMAGE_TOKENS - 1) for d in docs]
        assert sample.cu_lengths.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
        assert sample.max_length == max(lengths)


def test_a_batch_is_the_examples_batch_and_its_shift_gives_the_stored_weights(demo_out, stored) -> None:
    loader = energon.get_loader(_dataset(demo_out, _encoder(demo_out), batch_size=1))
    batch = next(iter(loader))
    expected = {f for f, _ in EXAMPLE_FIELDS["ImageTaskBatchPacked"]} - {"__subflavors__"}
    assert set(batch) == expected | {"loss_weights", "__sources__"}
    # The dtypes the example's get_batch broadcasts each field with (tensor_parallel.broadcast_data checks them).
    dtypes = {
        "tokens": torch.int64,
        "labels": torch.int64,
        "imgs": torch.float32,
        "num_tiles": torch.int32,
        "cu_lengths": torch.int32,
        "max_lengths": torch.int32,
        "loss_weights": torch.float32,
    }
    assert {field: batch[field].dtype for field in dtypes} == dtypes
    raw = stored[batch["__key__"][0]]
    tokens, weights, n = raw["tokens.npy"], raw["weights.npy"], len(raw["tokens.npy"])
    assert batch["tokens"].shape == (1, n) and batch["labels"].shape == batch["loss_weights"].shape == (1, n + 1)
    assert batch["imgs"].shape == (int(batch["num_tiles"].sum()), 3, TILE, TILE)
    assert batch["cu_lengths"].shape == (1, len(json.loads(raw["json"])["documents"]) + 1)
    # The example's get_batch: tokens[:, :L], labels[:, 1:L+1]; loss_mask 0 on pad and IGNORE_INDEX labels.
    # The README's patch multiplies it by loss_weights[:, 1:L+1]: that must be the weight of each next token.
    labels = batch["labels"][:, 1 : n + 1]
    loss_mask = ((labels != 3) & (labels != IGNORE_INDEX)).float()  # 3: the demo tokenizer's pad id
    patched = loss_mask * batch["loss_weights"][:, 1 : n + 1]
    assert np.array_equal(patched[0, : n - 1].numpy(), weights[1:]) and patched[0, n - 1] == 0
    assert np.array_equal(labels[0, : n - 1].numpy(), np.where(weights[1:] > 0, tokens[1:], IGNORE_INDEX))


def test_batches_of_sequences_with_different_document_counts_are_refused(demo_out) -> None:
    loader = energon.get_loader(_dataset(demo_out, _encoder(demo_out), batch_size=4))
    with pytest.raises(FatalSampleError, match="use --micro-batch-size 1"):
        list(loader)


def test_sequences_longer_than_the_dataloader_length_are_refused_not_cut(demo_out) -> None:
    loader = energon.get_loader(_dataset(demo_out, _encoder(demo_out, dataloader_seq_length=64), batch_size=1))
    with pytest.raises(FatalSampleError, match="tokens exceed dataloader_seq_length=64"):
        next(iter(loader))


def test_fractional_lambda_reaches_loss_weights_and_labels_keep_their_tokens(demo_out, stored) -> None:
    samples = _samples(demo_out, reweigh=Reweigh(mode="lit", overrides={TokenClass.INSTRUCTION: 0.3}))
    seen_instruction = False
    for sample in samples:
        raw = stored[sample.__key__]
        instruction = raw["classes.npy"] == TokenClass.INSTRUCTION
        instruction[raw["cu_seqlens.npy"][:-1]] = False  # a document's first token always has weight 0
        seen_instruction |= bool(instruction.any())
        assert np.allclose(sample.loss_weights.numpy()[instruction], 0.3)
        assert np.array_equal(sample.labels.numpy(), np.where(sample.loss_weights.numpy() > 0, raw["tokens.npy"], -100))
    assert seen_instruction


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_from_energon_saved_state_gives_the_same_next_batch(demo_out, workers) -> None:
    def loader():
        ds = _dataset(
            demo_out,
            _encoder(demo_out),
            batch_size=1,
            workers=workers,
            shuffle_buffer_size=8,
            max_samples_per_sequence=4,
            repeat=True,
        )
        return energon.get_savable_loader(ds, checkpoint_every_min_n_samples=1)

    first = loader()
    it = iter(first)
    for _ in range(5):
        next(it)
    state = first.save_state_rank()
    expected = [next(it) for _ in range(2)]

    resumed = loader()
    resumed.restore_state_rank(state)
    it = iter(resumed)
    got = [next(it) for _ in range(2)]
    for want, have in zip(expected, got):
        assert have["__key__"] == want["__key__"]
        for field in ("tokens", "labels", "loss_weights", "imgs", "num_tiles", "cu_lengths", "max_lengths"):
            assert torch.equal(have[field], want[field]), field


# ---- per-image token counts (issue 13's members) on small hand-made folders ------------------------------------
def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


IMG = 9  # the image placeholder id of the hand-made folders


def _folder(tmp_path: Path, members: dict[str, bytes], *, image_tokens: int | None) -> Path:
    """One shard holding one sample `s0`: two documents [5, IMG, 6, 7] and [5, 8, IMG, IMG, 6], three images."""
    tokens = np.array([5, IMG, 6, 7, 5, 8, IMG, IMG, 6], np.int32)
    classes = np.where(tokens == IMG, TokenClass.IMAGE, TokenClass.RESPONSE).astype(np.uint8)
    weights = np.where(tokens == IMG, 0.0, 1.0).astype(np.float32)
    cu = np.array([0, 4, 9], np.int32)
    weights[cu[:-1]] = 0.0
    sample = {
        "__key__": "s0",
        "tokens.npy": _npy(tokens),
        "weights.npy": _npy(weights),
        "classes.npy": _npy(classes),
        "cu_seqlens.npy": _npy(cu),
        "json": json.dumps({"documents": [{"tokens": 4, "images": 1}, {"tokens": 5, "images": 2}]}).encode(),
        "img000.png": _png(TILE, TILE),
        "img001.png": _png(2 * TILE, TILE),
        "img002.png": _png(TILE, TILE),
        **members,
    }
    with wds.TarWriter(str(tmp_path / "shard-000000.tar"), mtime=0) as sink:
        sink.write(sample)
    config = {"pad_id": 0, "image_token_id": IMG, "image_tokens": image_tokens}
    manifest = {"format": {"name": FORMAT_NAME, "version": 2}, "config": config}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    write_nv_meta(tmp_path, [EnergonShard(name="shard-000000.tar", sequences=1)])
    return tmp_path


TILED = {"num_image_embeddings_per_tile": 4, "use_tiling": True, "max_num_tiles": 2}


def test_per_image_token_counts_expand_cu_lengths(tmp_path) -> None:
    counts, tiles = np.array([4, 8, 4], np.int32), np.array([1, 2, 1], np.int32)
    folder = _folder(tmp_path, {"image_tokens.npy": _npy(counts), "image_tiles.npy": _npy(tiles)}, image_tokens=None)
    [sample] = _samples(folder, **TILED)
    assert sample.num_tiles == [1, 2, 1] and len(sample.imgs) == 4
    # Document 0: 4 tokens, one 4-token image -> 7; document 1: 5 tokens, images of 8 and 4 -> 15.
    assert sample.cu_lengths.tolist() == [0, 7, 22] and sample.max_length == 15


def test_counts_that_disagree_with_the_models_tiles_are_refused_naming_the_member(tmp_path) -> None:
    counts = np.array([4, 4, 4], np.int32)  # the wide image makes 2 tiles: 8 embeddings, not 4
    folder = _folder(tmp_path, {"image_tokens.npy": _npy(counts)}, image_tokens=None)
    with pytest.raises(FatalSampleError, match=r"shard-000000.tar: sample s0: member image_tokens.npy: .*\[4, 8, 4\]"):
        _samples(folder, **TILED)


def test_a_folder_without_fixed_count_needs_the_per_image_member(tmp_path) -> None:
    folder = _folder(tmp_path, {}, image_tokens=None)
    with pytest.raises(FatalSampleError, match="member image_tokens.npy: missing"):
        _samples(folder, **TILED)


def test_format_1_shards_use_the_manifests_fixed_count(tmp_path) -> None:
    folder = _folder(tmp_path, {}, image_tokens=4)
    [sample] = _samples(folder, num_image_embeddings_per_tile=4)
    assert sample.num_tiles == [1, 1, 1] and sample.cu_lengths.tolist() == [0, 7, 18]


def test_a_pickled_member_is_refused_naming_shard_sample_and_member(tmp_path) -> None:
    assert issubclass(SampleError, FatalSampleError)  # Energon's handler must not skip it uncounted
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    folder = _folder(tmp_path, {"weights.npy": buffer.getvalue()}, image_tokens=4)
    with pytest.raises(FatalSampleError, match="shard-000000.tar: sample s0: member weights.npy: not a plain .npy"):
        _samples(folder, num_image_embeddings_per_tile=4)


def test_a_compile_for_another_image_token_count_is_refused_with_the_numbers(demo_out) -> None:
    with pytest.raises(ValueError, match="--image-tokens 576, but the vision model emits 16.*--image-tokens 16"):
        LitdataTaskEncoder(demo_out, num_image_embeddings_per_tile=16)


def test_from_args_reads_the_examples_image_options(demo_out) -> None:
    args = SimpleNamespace(
        img_h=TILE,
        img_w=TILE,
        vision_model_type="siglip",
        use_tiling=True,
        max_num_tiles=4,
        use_thumbnail=True,
        dataloader_seq_length=4096,
    )
    encoder = LitdataTaskEncoder.from_args(args, demo_out, num_image_embeddings_per_tile=DEMO_IMAGE_TOKENS)
    assert (encoder.img_h, encoder.use_tiling, encoder.max_num_tiles, encoder.use_thumbnail) == (TILE, True, 4, True)
    assert encoder.transform_img.vision_model_type == "siglip" and encoder.dataloader_seq_length == 4096
    args.use_area_weighted_aspect_ratio = True  # a tiling rule that is not ported: refused, not ignored
    with pytest.raises(ValueError, match="use-area-weighted-aspect-ratio"):
        LitdataTaskEncoder.from_args(args, demo_out, num_image_embeddings_per_tile=DEMO_IMAGE_TOKENS)


def test_image_placeholders_can_take_the_models_image_token_index(tmp_path) -> None:
    [sample] = _samples(_folder(tmp_path, {}, image_tokens=4), num_image_embeddings_per_tile=4, image_token_index=-200)
    assert sample.tokens.tolist() == [5, -200, 6, 7, 5, 8, -200, -200, 6]
    assert (sample.labels[sample.tokens == -200] == IGNORE_INDEX).all()


# ---- the image transform ------------------------------------------------------------------------------------------
def test_a_tile_is_resized_rgb_scaled_and_normalised_with_the_models_statistics() -> None:
    image = Image.new("RGB", (50, 30), (255, 0, 128))
    [clip] = ImageTransform(TILE, "clip")(image, TILE, TILE)
    [siglip] = ImageTransform(TILE, "siglip")(image, TILE, TILE)
    assert clip.shape == siglip.shape == (3, TILE, TILE) and clip.dtype == torch.float32
    mean, std = torch.tensor([0.48145466, 0.4578275, 0.40821073]), torch.tensor([0.26862954, 0.26130258, 0.27577711])
    expected = (torch.tensor([255, 0, 128]) / 255 - mean) / std
    assert torch.allclose(clip[:, 5, 5], expected, atol=1e-6)
    assert torch.allclose(siglip[:, 5, 5], (torch.tensor([255, 0, 128]) / 255 - 0.5) / 0.5, atol=1e-6)


def test_tiling_cuts_the_closest_grid_row_by_row_and_appends_a_thumbnail() -> None:
    image = Image.new("RGB", (2 * TILE, TILE), (255, 0, 0))
    image.paste((0, 0, 255), (TILE, 0, 2 * TILE, TILE))  # left half red, right half blue
    tiles = ImageTransform(TILE, "siglip")(image, TILE, TILE, use_tiling=True, max_num_tiles=6, use_thumbnail=True)
    assert len(tiles) == 3  # a 2x1 grid, then the thumbnail
    red, blue = tiles[0][:, TILE // 2, TILE // 2], tiles[1][:, TILE // 2, TILE // 2]
    assert red[0] > 0.9 and red[2] < -0.9 and blue[2] > 0.9 and blue[0] < -0.9
    assert len(ImageTransform(TILE, "siglip")(image, TILE, TILE, use_tiling=True, max_num_tiles=1)) == 1


# ---- the loss patch ----------------------------------------------------------------------------------------------
def _megatron_microbatch_loss(loss_func, calculate_per_token_loss: bool, num_microbatches: int):
    """Megatron-Core's own `forward_step_calc_loss` (last stage, no context parallel) applied to `loss_func`."""
    from megatron.core.pipeline_parallel.schedules import forward_step_calc_loss

    config = SimpleNamespace(calculate_per_token_loss=calculate_per_token_loss, timers=None)
    return forward_step_calc_loss(
        SimpleNamespace(),
        torch.zeros(()),
        lambda _: loss_func(),
        config,
        None,
        False,
        num_microbatches,
        [],
        cp_group_size=1,
        is_last_stage=True,
    )


def test_the_loss_is_the_weighted_mean_in_both_megatron_modes() -> None:
    rng = np.random.default_rng(0)
    ce = [torch.tensor(rng.random(6), dtype=torch.float32) for _ in range(2)]
    w = [torch.tensor([0.0, 0.3, 1.0, 0.3, 0.0, 1.0]), torch.tensor([0.0, 0.3, 0.3, 0.0, 0.0, 0.0])]  # sums 2.6, 0.6

    per_mb = [_megatron_microbatch_loss(lambda i=i: weighted_loss(w[i], ce[i]), False, 2) for i in range(2)]
    mean = [float((w[i] * ce[i]).sum() / w[i].sum()) for i in range(2)]
    assert float(per_mb[0][0] + per_mb[1][0]) == pytest.approx((mean[0] + mean[1]) / 2, rel=1e-6)

    # Per-token mode: Megatron sums num_tokens over micro-batches (int32) and divides the summed loss by it.
    per_tok = [
        _megatron_microbatch_loss(lambda i=i: weighted_loss(w[i], ce[i], calculate_per_token_loss=True), True, 2)
        for i in range(2)
    ]
    total = torch.zeros([], dtype=torch.int)
    for _, num_tokens in per_tok:
        total += num_tokens
    global_mean = float(sum((w[i] * ce[i]).sum() for i in range(2)) / sum(w[i].sum() for i in range(2)))
    # Exact up to the fixed-point rounding of each micro-batch's weight sum (0.6 -> 154/256 here).
    rounding = 0.5 / (WEIGHT_SCALE * 0.6)
    assert float(sum(loss for loss, _ in per_tok) / total) == pytest.approx(global_mean, rel=rounding)
    assert int(total) == round(2.6 * WEIGHT_SCALE) + round(0.6 * WEIGHT_SCALE)


def test_the_examples_integer_count_is_what_the_patch_fixes() -> None:
    ce, w = torch.ones(4), torch.tensor([0.0, 0.3, 0.3, 0.3])  # weighted mean 1.0; the weight sum 0.9 truncates to 0
    unpatched = _megatron_microbatch_loss(lambda: (torch.sum(ce * w), w.sum().to(torch.int), {}), False, 1)
    patched = _megatron_microbatch_loss(lambda: weighted_loss(w, ce), False, 1)
    assert float(unpatched[0]) == pytest.approx(0.9) and float(patched[0]) == pytest.approx(1.0)
