"""A litdata output folder opens in Megatron-Energon as a `CrudeWebdataset`.

Checked with megatron-energon 7.4.1, whose on-disk layout `write_nv_meta` reproduces: `.nv-meta/.info.json`
(shard counts), `split.yaml`, `dataset.yaml`, `index.sqlite` (tables `samples` and `sample_parts`),
`index.uuid`, and a `SHARD.tar.idx` of uint64 sample offsets next to each shard. Earlier energon releases
read `.info.yaml` (7.4.1 still accepts it as a fallback) and built an `index.sqlite` without `sample_parts`;
7.4.1 still reads such an index, only slower. If a later release changes any of these files,
`test_index_matches_energon_prepare` (which runs energon's own `prepare` on the same shards) says so.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from litdata.shards.energon import META_DIR, EnergonShard, write_nv_meta
from litdata.shards.schema import FORMAT_NAME

energon = pytest.importorskip("megatron.energon")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def _packed_sample(rng: np.random.Generator, key: str, with_image: bool) -> dict:
    doc_lengths = rng.integers(3, 9, size=int(rng.integers(1, 4)))
    cu_seqlens = np.concatenate([[0], np.cumsum(doc_lengths)]).astype(np.int32)
    n = int(cu_seqlens[-1])
    weights = rng.random(n, dtype=np.float32)
    weights[cu_seqlens[:-1]] = 0.0  # nothing predicts the first token of a document
    sample = {
        "__key__": key,
        "tokens.npy": _npy(rng.integers(0, 32000, size=n, dtype=np.int32)),
        "weights.npy": _npy(weights),
        "classes.npy": _npy(rng.integers(0, 7, size=n, dtype=np.uint8)),
        "cu_seqlens.npy": _npy(cu_seqlens),
        "json": json.dumps([{"id": f"{key}-{d}", "tokens": int(t)} for d, t in enumerate(doc_lengths)]).encode(),
    }
    if with_image:
        sample["img000.png"] = _png()
    return sample


def _write_shards(out_dir: Path, sizes: list[int]) -> dict[str, dict]:
    """DESIGN-format shards; returns what was written, by key."""
    rng = np.random.default_rng(7)
    written: dict[str, dict] = {}
    for shard, size in enumerate(sizes):
        with wds.TarWriter(str(out_dir / f"shard-{shard:06d}.tar"), mtime=0) as sink:
            for i in range(size):
                key = f"{shard:06d}-{i:06d}"
                written[key] = _packed_sample(rng, key, with_image=(shard, i) == (0, 1))
                sink.write(written[key])
    return written


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "compiled"
    folder.mkdir()
    return folder


@energon.edataclass
class PackedSample(energon.Sample):
    members: dict


@energon.stateless
def cook_packed(crude: dict) -> PackedSample:
    members = {name: value for name, value in crude.items() if not name.startswith("__")}
    return PackedSample(**energon.basic_sample_keys(crude), members=members)


@energon.stateless
@energon.cooker(need_primary=True)
def cook_via_index(crude: dict, primary) -> PackedSample:
    # Reads every member again through index.sqlite (the random-access path used by aux/primary file stores).
    members = {name: primary.get(f".{name}") for name in crude if not name.startswith("__")}
    return PackedSample(**energon.basic_sample_keys(crude), members=members)


class RawBytesEncoder(energon.DefaultTaskEncoder):
    decoder = None  # hand the cooker the member bytes exactly as stored

    def __init__(self, cook) -> None:
        super().__init__()
        self.cookers = [energon.Cooker(cook, has_subflavors={"litdata_format": FORMAT_NAME})]


def _load_all(out_dir: Path, cook) -> list[PackedSample]:
    dataset = energon.get_train_dataset(
        out_dir,
        batch_size=None,
        shuffle_buffer_size=None,
        max_samples_per_sequence=None,
        worker_config=energon.WorkerConfig.default_worker_config(0),
        task_encoder=RawBytesEncoder(cook),
        repeat=False,
    )
    return list(energon.get_loader(dataset))


def _assert_same_members(loaded: list[PackedSample], written: dict[str, dict]) -> None:
    assert sorted(s.__key__ for s in loaded) == sorted(written)  # every sample exactly once
    for sample in loaded:
        expected = written[sample.__key__]
        assert sorted(sample.members) == sorted(k for k in expected if k != "__key__")
        for member in ("tokens.npy", "weights.npy", "classes.npy", "cu_seqlens.npy"):
            got = np.load(io.BytesIO(sample.members[member]), allow_pickle=False)
            want = np.load(io.BytesIO(expected[member]), allow_pickle=False)
            assert got.dtype == want.dtype and np.array_equal(got, want)
        assert json.loads(sample.members["json"]) == json.loads(expected["json"])
        if "img000.png" in expected:
            assert sample.members["img000.png"] == expected["img000.png"]
            assert Image.open(io.BytesIO(sample.members["img000.png"])).size == (4, 3)


def test_energon_loads_every_sample_of_every_shard(out_dir: Path) -> None:
    written = _write_shards(out_dir, [3, 2])
    entries = [EnergonShard(name="shard-000000.tar", sequences=3), EnergonShard(name="shard-000001.tar", sequences=2)]
    paths = write_nv_meta(out_dir, entries)

    assert {p.relative_to(out_dir).as_posix() for p in paths} == {
        "shard-000000.tar.idx",
        "shard-000001.tar.idx",
        f"{META_DIR}/.info.json",
        f"{META_DIR}/split.yaml",
        f"{META_DIR}/dataset.yaml",
        f"{META_DIR}/index.sqlite",
        f"{META_DIR}/index.uuid",
    }
    assert not list(out_dir.rglob("*.tmp"))
    _assert_same_members(_load_all(out_dir, cook_packed), written)


def test_random_access_by_key_uses_the_sqlite_index(out_dir: Path) -> None:
    written = _write_shards(out_dir, [3, 2])
    write_nv_meta(out_dir, [EnergonShard(name="shard-000000.tar"), EnergonShard(name="shard-000001.tar")])
    _assert_same_members(_load_all(out_dir, cook_via_index), written)


def test_index_matches_energon_prepare(out_dir: Path, tmp_path: Path) -> None:
    _write_shards(out_dir, [3, 2])
    names = ["shard-000000.tar", "shard-000001.tar"]
    reference = tmp_path / "prepared_by_energon"
    reference.mkdir()
    for name in names:
        shutil.copyfile(out_dir / name, reference / name)

    write_nv_meta(out_dir, [EnergonShard(name=name) for name in names])
    energon.BaseWebdatasetFactory.prepare_dataset(reference, names, split_parts_patterns=[("train", r".*")], workers=1)

    for name in names:
        assert (out_dir / f"{name}.idx").read_bytes() == (reference / f"{name}.idx").read_bytes()
    ours = json.loads((out_dir / META_DIR / ".info.json").read_text())
    theirs = json.loads((reference / META_DIR / ".info.json").read_text())
    assert ours["shard_counts"] == theirs["shard_counts"] == {"shard-000000.tar": 3, "shard-000001.tar": 2}

    def rows(folder: Path) -> tuple[list, list]:
        with sqlite3.connect(folder / META_DIR / "index.sqlite") as db:
            samples = db.execute("SELECT * FROM samples ORDER BY tar_file_id, sample_index").fetchall()
            parts = db.execute("SELECT * FROM sample_parts ORDER BY tar_file_id, content_byte_offset").fetchall()
        return samples, parts

    assert rows(out_dir) == rows(reference)


def test_same_shards_give_byte_identical_metadata(out_dir: Path, tmp_path: Path) -> None:
    _write_shards(out_dir, [3, 2])
    entries = [EnergonShard(name="shard-000000.tar"), EnergonShard(name="shard-000001.tar")]
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)

    first = {p.relative_to(out_dir): p.read_bytes() for p in write_nv_meta(out_dir, entries)}
    again = {p.relative_to(out_dir): p.read_bytes() for p in write_nv_meta(out_dir, entries)}
    elsewhere = {p.relative_to(copy): p.read_bytes() for p in write_nv_meta(copy, entries)}
    assert first == again == elsewhere
    assert (out_dir / META_DIR / "split.yaml").read_text() == (
        "split_parts:\n  train:\n  - shard-000000.tar\n  - shard-000001.tar\nexclude: []\n"
    )


def test_a_sample_key_used_twice_is_refused_with_its_name(out_dir: Path) -> None:
    _write_shards(out_dir, [2])
    with wds.TarWriter(str(out_dir / "shard-000001.tar"), mtime=0) as sink:
        sink.write(_packed_sample(np.random.default_rng(1), "000000-000001", with_image=False))
    with pytest.raises(ValueError, match="000000-000001"):
        write_nv_meta(out_dir, [EnergonShard(name="shard-000000.tar"), EnergonShard(name="shard-000001.tar")])


def test_split_sample_members_are_refused(out_dir: Path) -> None:
    with wds.TarWriter(str(out_dir / "shard-000000.tar"), mtime=0) as sink:
        sink.write({"__key__": "a", "json": b"{}"})
        sink.write({"__key__": "b", "json": b"{}"})
        sink.write({"__key__": "a", "tokens.npy": _npy(np.zeros(2, np.int32))})
    with pytest.raises(ValueError, match="not contiguous"):
        write_nv_meta(out_dir, [EnergonShard(name="shard-000000.tar")])


def test_a_wrong_sequence_count_is_refused(out_dir: Path) -> None:
    _write_shards(out_dir, [2])
    with pytest.raises(ValueError, match="holds 2 samples, the writer reported 3"):
        write_nv_meta(out_dir, [EnergonShard(name="shard-000000.tar", sequences=3)])


def test_energon_reads_the_compiled_demo_with_the_same_arrays(demo_out: Path) -> None:
    from tests.helpers.compile import read_samples

    written = {s["__key__"]: s for shard in sorted(demo_out.glob("shard-*.tar")) for s in read_samples(shard)}
    loaded = _load_all(demo_out, cook_packed)
    assert sorted(s.__key__ for s in loaded) == sorted(written)
    for sample in loaded:
        for member in ("tokens.npy", "weights.npy", "classes.npy", "cu_seqlens.npy"):
            got = np.load(io.BytesIO(sample.members[member]), allow_pickle=False)
            want = written[sample.__key__][member]
            assert got.dtype == want.dtype and np.array_equal(got, want)
        images = sorted(k for k in written[sample.__key__] if k.startswith("img"))
        assert [sample.members[k] for k in images] == [written[sample.__key__][k] for k in images]
