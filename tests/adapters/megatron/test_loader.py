"""The shard loader: split without overlap or loss, deterministic shuffling, exact resume, re-weighing,
images, and corrupt shards (named, or skipped and counted; never unpickled)."""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.megatron.data import PackedShardDataset
from adapters.megatron.images import CLIP_MEAN, CLIP_STD, ImageSpec, preprocess
from adapters.megatron.loader import build_loader
from adapters.megatron.reweigh import Reweigh
from adapters.megatron.shards import CorruptShardError
from litdata.classes import TokenClass
from tests.helpers.shard_fixtures import Fixture, edit_shard, refresh_manifest, write_shards

SEQ = 256


@pytest.fixture
def shards(tmp_path: Path) -> Fixture:
    return write_shards(tmp_path / "out", documents=100, seq_len=SEQ, sequences_per_shard=3)


def rows(batches) -> list[tuple[int, ...]]:
    """The real (non-padding) token rows of a list of batches, as tuples."""
    out = []
    for b in batches:
        for tokens, docs in zip(b["tokens"], b["document_ids"]):
            n = int((docs >= 0).sum())
            if n:
                out.append(tuple(tokens[:n].tolist()))
    return out


def batches_of(loader) -> list[dict]:
    return [{k: (v.clone() if hasattr(v, "clone") else v) for k, v in b.items()} for b in loader]


# ---- reading, splitting, shuffling ---------------------------------------------------------------------


def test_reads_every_sequence_in_manifest_order(shards):
    got = list(PackedShardDataset(shards.out, shuffle=False))
    assert [s.key for s in got] == shards.keys
    for s, want in zip(got, shards.sequences):
        np.testing.assert_array_equal(s.tokens, want.tokens)
        np.testing.assert_array_equal(s.weights, want.weights)
        np.testing.assert_array_equal(s.cu_seqlens, want.cu_seqlens)


def test_accepts_a_list_of_tars_and_a_brace_pattern(shards):
    paths = [str(shards.shard_path(i)) for i in range(3)]
    by_list = [s.key for s in PackedShardDataset(paths, shuffle=False)]
    by_brace = [s.key for s in PackedShardDataset(str(shards.out / "shard-{000000..000002}.tar"), shuffle=False)]
    assert by_list == by_brace == [k for k in shards.keys if k < "s000003"]


@pytest.mark.parametrize("shards_per_file", [3, 9])  # 3: split by shard; 9: 4 shards < 4 slots, split by sequence
def test_dp_ranks_and_workers_split_without_overlap_or_loss(tmp_path, shards_per_file):
    fx = write_shards(tmp_path / "out", documents=100, seq_len=SEQ, sequences_per_shard=shards_per_file)
    seen: list[tuple[int, ...]] = []
    for rank in range(2):
        ds = PackedShardDataset(fx.out, dp_rank=rank, dp_size=2, seed=3)
        mine = rows(build_loader(ds, micro_batch_size=2, seq_len=SEQ, num_workers=2))
        assert mine, f"rank {rank} got nothing"
        seen += mine
    assert Counter(seen) == Counter(tuple(s.tokens.tolist()) for s in fx.sequences)


def test_too_little_data_for_the_ranks_raises_instead_of_starving_a_rank(tmp_path):
    fx = write_shards(tmp_path / "out", documents=8, seq_len=SEQ, sequences_per_shard=5)
    n = len(fx.sequences)  # a rank more than there are sequences
    assert len(list(PackedShardDataset(fx.out, dp_rank=0, dp_size=n + 1))) == 1
    with pytest.raises(ValueError, match=f"dp rank {n} loader worker 0 got no sequences in epoch 0"):
        list(PackedShardDataset(fx.out, dp_rank=n, dp_size=n + 1))


def test_order_is_deterministic_for_a_seed_and_differs_between_seeds(shards):
    def order(seed):
        return [s.key for s in PackedShardDataset(shards.out, seed=seed, epochs=2, shuffle_buffer=8)]

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert sorted(order(0)) == sorted(shards.keys * 2)
    first, second = order(0)[: len(shards.keys)], order(0)[len(shards.keys) :]
    assert first != second  # each epoch is shuffled anew


# ---- resume --------------------------------------------------------------------------------------------


def test_dataset_resumes_at_the_exact_next_sequence(shards):
    full = [s.key for s in PackedShardDataset(shards.out, seed=5, epochs=2)]
    for k in (0, 1, 7, len(shards.keys), len(full) - 1):
        ds = PackedShardDataset(shards.out, seed=5, epochs=2)
        it = iter(ds)
        head = [next(it).key for _ in range(k)]
        state = ds.state_dict()
        fresh = PackedShardDataset(shards.out, seed=5, epochs=2)
        fresh.load_state_dict(state)
        assert head + [s.key for s in fresh] == full, k


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_resumes_at_the_exact_next_batch(shards, workers):
    def loader():
        ds = PackedShardDataset(shards.out, seed=1, epochs=2, image_spec=None)
        return build_loader(ds, micro_batch_size=3, seq_len=SEQ, num_workers=workers)

    full = batches_of(loader())
    for k in (1, 4, len(full) - 1):
        first = loader()
        head = []
        for b in first:
            head.append(b)
            if len(head) == k:
                break
        state = first.state_dict()
        resumed = loader()
        resumed.load_state_dict(state)
        rest = batches_of(resumed)
        assert len(head) + len(rest) == len(full), k
        for got, want in zip(head + rest, full):
            assert got["tokens"].equal(want["tokens"]) and got["loss_mask"].equal(want["loss_mask"])


def test_resume_with_a_different_worker_count_is_refused(shards):
    ds = PackedShardDataset(shards.out)
    loader = build_loader(ds, micro_batch_size=2, seq_len=SEQ, num_workers=2)
    next(iter(loader))
    state = loader.state_dict()
    other = PackedShardDataset(shards.out)
    other.load_state_dict(state)
    with pytest.raises(ValueError, match="use the same num_workers"):
        next(iter(build_loader(other, micro_batch_size=2, seq_len=SEQ, num_workers=0)))
    with pytest.raises(ValueError, match="seed"):
        PackedShardDataset(shards.out, seed=9).load_state_dict(state)


# ---- re-weighing and images ----------------------------------------------------------------------------


def test_reweigh_vit_lit_and_overrides(shards):
    stored = list(PackedShardDataset(shards.out, shuffle=False))
    vit = list(PackedShardDataset(shards.out, shuffle=False, reweigh=Reweigh(mode="vit")))
    custom = list(PackedShardDataset(shards.out, shuffle=False, reweigh=Reweigh.from_cli("lit", ["instruction=0.3"])))
    for s, v, c in zip(stored, vit, custom):
        starts = s.cu_seqlens[:-1]
        response, instruction = s.classes == TokenClass.RESPONSE, s.classes == TokenClass.INSTRUCTION
        assert np.all(v.weights[starts] == 0) and np.all(c.weights[starts] == 0)
        inner = np.ones_like(response)
        inner[starts] = False
        np.testing.assert_array_equal(v.weights, (response & inner).astype(np.float32))
        np.testing.assert_allclose(c.weights, np.where(inner, response * 1.0 + instruction * 0.3, 0.0))
    lit = list(PackedShardDataset(shards.out, shuffle=False, reweigh=Reweigh(mode="lit")))
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(lit, stored))  # the fixture is lit
    with pytest.raises(ValueError, match="harmful"):
        Reweigh(overrides={TokenClass.HARMFUL: 1.0})


def _image(colour, size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_image_is_padded_to_square_with_the_mean_colour_and_normalised():
    white = _image((255, 255, 255), (20, 10))
    pixels = preprocess(white, ImageSpec(size=20))
    assert pixels.shape == (3, 20, 20) and pixels.dtype == np.float32
    white_norm = (1 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    np.testing.assert_allclose(pixels[:, 10, 10], white_norm, atol=1e-5)  # the image, centred
    np.testing.assert_allclose(pixels[:, 0, 10], 0.0, atol=0.02)  # the mean-colour band above it
    np.testing.assert_allclose(pixels[:, 19, 10], 0.0, atol=0.02)
    stretched = preprocess(white, ImageSpec(size=8, pad_to_square=False))
    np.testing.assert_allclose(stretched, np.broadcast_to(white_norm[:, None, None], (3, 8, 8)), atol=1e-5)
    with pytest.raises(ValueError, match="undecodable"):
        preprocess(b"not an image", ImageSpec())


def test_loader_decodes_images_in_placeholder_order(tmp_path):
    fx = write_shards(tmp_path / "out", documents=30, seq_len=SEQ, images=True, image_tokens=8)
    spec = ImageSpec(size=16)
    batches = batches_of(
        build_loader(PackedShardDataset(fx.out, shuffle=False, image_spec=spec), micro_batch_size=2, seq_len=SEQ)
    )
    expected = [preprocess(p, spec) for s in fx.sequences for p in s.images]
    got = [img.numpy() for b in batches for img in b["images"]]
    assert len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    assert sum(int(b["num_images"].sum()) for b in batches) == len(expected)
    assert all(b["cu_seqlens"][-1] == 2 * SEQ for b in batches)


# ---- corrupt shards ------------------------------------------------------------------------------------


def _read_all(out, **kw):
    return list(PackedShardDataset(out, shuffle=False, **kw))


def _member_offsets(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def test_truncated_shard_fails_the_size_check(shards):
    path = shards.shard_path(1)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(CorruptShardError, match="shard-000001.tar: member <file>: 3000 bytes"):
        _read_all(shards.out)


def test_truncated_shard_is_detected_without_a_manifest(shards, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    path = bare / "shard-000001.tar"
    shutil.copy(shards.shard_path(1), path)
    victim = _member_offsets(path)[6]
    path.write_bytes(path.read_bytes()[: victim.offset_data + 10])
    with pytest.raises(CorruptShardError, match="shard-000001.tar: member <end-of-archive>: truncated tar"):
        _read_all([str(path)])


def test_tar_cut_between_members_is_detected(shards):
    path = shards.shard_path(0)
    cut = _member_offsets(path)[5].offset  # the header of the second sample
    path.write_bytes(path.read_bytes()[:cut])
    refresh_manifest(shards.out)
    with pytest.raises(CorruptShardError, match="shard-000000.tar: member <end-of-archive>"):
        _read_all(shards.out)


def test_flipped_byte_fails_the_checksum(shards):
    path = shards.shard_path(2)
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match="shard-000002.tar: member <file>: sha256"):
        _read_all(shards.out)


def _npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


@pytest.mark.parametrize(
    "member, replacement, reason",
    [
        ("tokens.npy", b"garbage, not npy", "not a plain .npy array"),
        ("tokens.npy", _npy(np.arange(5, dtype=np.int64)), "expected int32"),
        ("weights.npy", _npy(np.zeros(3, np.float32)), "length 3"),
        ("classes.npy", _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True), "not a plain .npy array"),
        ("weights.npy", None, "missing"),
        ("json", b"{not json", "invalid JSON"),
    ],
)
def test_bad_member_is_named(shards, member, replacement, reason):
    key = shards.keys[4]  # in shard-000001.tar
    edit_shard(shards.shard_path(1), lambda name, data: replacement if name == f"{key}.{member}" else data)
    refresh_manifest(shards.out)
    with pytest.raises(CorruptShardError, match=reason) as err:
        _read_all(shards.out)
    assert (err.value.shard, err.value.member) == ("shard-000001.tar", f"{key}.{member}")


def test_missing_sample_fails_the_manifest_count(shards):
    key = shards.keys[4]
    edit_shard(shards.shard_path(1), lambda name, data: None if name.startswith(key) else data)
    refresh_manifest(shards.out)  # sizes and hashes match again; the sequence count does not
    with pytest.raises(CorruptShardError, match="shard-000001.tar: member <tar>: 2 sequences, manifest says 3"):
        _read_all(shards.out)


def test_skip_corrupt_skips_the_rest_of_the_shard_counts_and_warns_once(shards, caplog):
    key = shards.keys[4]  # the second sequence of shard 1: the first one is kept
    edit_shard(shards.shard_path(1), lambda name, data: b"junk" if name == f"{key}.tokens.npy" else data)
    refresh_manifest(shards.out)
    caplog.set_level(logging.WARNING)
    ds = PackedShardDataset(shards.out, shuffle=False, epochs=2, skip_corrupt=True)
    got = [s.key for s in ds]
    lost = set(shards.keys[4:6])
    assert got == [k for k in shards.keys if k not in lost] * 2
    assert ds.stats.shards_skipped == 2 and ds.stats.sequences_skipped == 4  # once per epoch
    assert sum("shard-000001.tar" in r.message for r in caplog.records) == 1


def test_skip_corrupt_counts_through_loader_workers(shards):
    path = shards.shard_path(0)
    path.write_bytes(path.read_bytes()[:2048])
    ds = PackedShardDataset(shards.out, skip_corrupt=True)
    loader = build_loader(ds, micro_batch_size=2, seq_len=SEQ, num_workers=2)
    assert len(rows(loader)) == len(shards.keys) - 3
    assert loader.stats.shards_skipped == 1 and loader.stats.sequences_skipped == 3


def test_undecodable_image_is_named_or_skips_its_sequence(tmp_path):
    fx = write_shards(tmp_path / "out", documents=30, seq_len=SEQ, images=True, sequences_per_shard=50)
    victim = next(s for s in fx.sequences if s.images)
    edit_shard(fx.shard_path(0), lambda name, data: b"\x89PNG broken" if name == f"{victim.key}.img000.png" else data)
    refresh_manifest(fx.out)
    with pytest.raises(CorruptShardError, match=f"member {victim.key}.img000.png: undecodable"):
        _read_all(fx.out, image_spec=ImageSpec(size=8))
    ds = PackedShardDataset(fx.out, shuffle=False, image_spec=ImageSpec(size=8), skip_corrupt=True)
    assert [s.key for s in ds] == [k for k in fx.keys if k != victim.key]
    assert ds.stats.sequences_skipped == 1 and ds.stats.shards_skipped == 0
