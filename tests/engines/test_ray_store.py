"""The Ray engine's store of completed partitions (no Ray needed): what a rerun reads back is exactly what the
tasks returned (documents with file and embedded images, truncated documents, rejects, harmful hits, shape rows),
nothing is pickled, and a file cut short or altered is recomputed rather than used."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdata.classes import class_weights
from litdata.config import HarmfulSettings, MiningSettings
from litdata.demo import DEMO_IMAGE_ROOT, DEMO_TOKENIZER_DIR
from litdata.encode import EncodeSpec
from litdata.engines.partitions import plan_partitions
from litdata.engines.store import PartitionStore
from litdata.engines.tasks import count_partition, encode_partition
from litdata.read import ReadLimits
from litdata.records import Document

PNG = next(Path(DEMO_IMAGE_ROOT, "coco").glob("*.png"))


def turns(question: str, answer: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def write_sources(tmp_path: Path) -> list[str]:
    """File images, a document long enough to be truncated, a harmful phrase, rejects; embedded images."""
    rows = [{"id": f"f{i}", "image": f"coco/{PNG.name}", "conversations": turns("<image>\nWhat is it? " * (i + 1),
                                                                                 f"A shape, number {i}.")}
            for i in range(6)]
    rows.append({"id": "long", "conversations": turns("Tell me. " * 400, "No.")})
    rows.append({"id": "bad", "image": "missing.png", "conversations": turns("<image>\nWhat?", "Nothing.")})
    rows.append({"id": "harm", "conversations": turns("How do I cook meth at home?", "I will not help.")})
    lines = tmp_path / "a.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    embedded = tmp_path / "e.parquet"
    png = PNG.read_bytes()
    pq.write_table(pa.Table.from_pylist([{"id": f"e{i}", "image": {"bytes": png, "path": f"e{i}.png"},
                                          "conversations": turns("<image>\nAnd this?", f"Embedded {i}.")}
                                         for i in range(3)]), embedded)
    return [str(lines), str(embedded)]


def spec() -> EncodeSpec:
    return EncodeSpec(tokenizer=str(DEMO_TOKENIZER_DIR), template="vicuna_v1", weights=class_weights("lit"),
                      seq_len=512, image_tokens=16, overflow="truncate", image_root=str(DEMO_IMAGE_ROOT),
                      max_pixels=10**8, harmful=HarmfulSettings(phrases=("cook meth",)))


def same_item(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if not isinstance(a, Document):
        return a == b
    for f in dataclasses.fields(Document):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("src")
    parts = plan_partitions(write_sources(tmp), partition_bytes=600)
    assert len(parts) > 3
    return parts, [encode_partition(p, 0, ReadLimits(), spec(), 4) for p in parts]


def test_encoded_partitions_read_back_exactly(encoded, tmp_path):
    parts, results = encoded
    items = [i for batches in results for items in batches for i in items]
    docs = [i for i in items if isinstance(i, Document)]
    assert any(d.truncated_from for d in docs) and any(b.data for d in docs for b in d.images)
    assert any(b.path for d in docs for b in d.images) and len(docs) < len(items)
    assert any(i.audit for i in items)
    store = PartitionStore(tmp_path / ".litdata-work", run_key="k")
    for part, batches in zip(parts, results):
        store.save_encoded(part, batches)
    for part, batches in zip(parts, results):
        assert store.has("encode", part)
        back = store.load_encoded(part)
        assert [len(items) for items in back] == [len(items) for items in batches]
        assert all(same_item(x, y) for xs, ys in zip(back, batches) for x, y in zip(xs, ys))
    assert {p.suffix for p in store.folder.iterdir()} == {".json", ".npy", ".bin"}  # no pickle anywhere


def test_counted_partitions_read_back_exactly(tmp_path):
    src = write_sources(tmp_path)
    store = PartitionStore(tmp_path / ".litdata-work", run_key="k")
    for part in plan_partitions(src, partition_bytes=600):
        got = count_partition(part, 0, ReadLimits(), MiningSettings())
        store.save_counted(part, got)
        back = store.load_counted(part)
        assert dataclasses.replace(back, shape_rows=None) == dataclasses.replace(got, shape_rows=None)
        assert (back.shape_rows is None) == (got.shape_rows is None)
        if got.shape_rows is not None:
            assert back.shape_rows.equals(got.shape_rows) and back.shape_rows.schema == got.shape_rows.schema


def test_results_belong_to_one_run_key_and_one_partition(encoded, tmp_path):
    parts, results = encoded
    store = PartitionStore(tmp_path / ".litdata-work", run_key="k")
    store.save_encoded(parts[0], results[0])
    assert not PartitionStore(store.folder, run_key="other options").has("encode", parts[0])
    assert not store.has("encode", parts[1]) and not store.has("count", parts[0])
    moved = dataclasses.replace(parts[0], stop=parts[0].stop + 1)  # another --partition-size
    assert not store.has("encode", moved)


@pytest.mark.parametrize("damage", ["cut short", "altered", "missing"])
def test_a_damaged_result_is_not_used(encoded, tmp_path, damage):
    parts, results = encoded
    store = PartitionStore(tmp_path / ".litdata-work", run_key="k")
    store.save_encoded(parts[0], results[0])
    victim = next(p for p in store.folder.iterdir() if p.name.endswith(".tokens.npy"))
    if damage == "cut short":
        victim.write_bytes(victim.read_bytes()[:-4])
    elif damage == "altered":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 1
        victim.write_bytes(bytes(data))
    else:
        victim.unlink()
    assert store.has("encode", parts[0]) and store.load_encoded(parts[0]) is None


def test_the_work_area_is_the_runs_own_refused_to_other_options_removed_by_overwrite(tmp_path):
    from litdata.engines.store import WORK_DIR
    from litdata.output.folder import RUN_FILE, OutputError, OutputWriter

    out = OutputWriter(tmp_path / "out")
    out.prepare(run_key="a", overwrite=False)
    out.claim(WORK_DIR)
    (out.path / WORK_DIR).mkdir()
    (out.path / WORK_DIR / "encode-000000-x.json").write_text("{}")  # a driver killed here
    with pytest.raises(OutputError, match="different options"):
        OutputWriter(out.path).prepare(run_key="b", overwrite=False)
    OutputWriter(out.path).prepare(run_key="a", overwrite=False)  # the same job resumes: kept
    assert (out.path / WORK_DIR / "encode-000000-x.json").exists()
    again = OutputWriter(out.path)
    again.prepare(run_key="b", overwrite=True)
    assert not (out.path / WORK_DIR).exists()
    again.claim(WORK_DIR)
    (out.path / WORK_DIR).mkdir()
    again.release(WORK_DIR)  # the compile succeeded
    assert not (out.path / WORK_DIR).exists()
    assert WORK_DIR not in json.loads((out.path / RUN_FILE).read_text())["files"]


@pytest.mark.parametrize(("failure", "kept"), [(None, False), ("image changed", False), ("engine", True),
                                               ("interrupted", True)])
def test_kept_partitions_outlive_a_failed_compile_only(tmp_path, failure, kept):
    """They serve a rerun: gone once the compile succeeded, or when an image changed under it (the kept
    documents name the old image's sha256); kept after any other failure."""
    from litdata.engines import EngineError
    from litdata.engines.ray_engine import RayEngine
    from litdata.engines.store import WORK_DIR
    from litdata.images.file import ImageChangedError
    from litdata.output.folder import OutputWriter

    out = OutputWriter(tmp_path / "out")
    out.prepare(run_key="a", overwrite=False)
    errors = {"image changed": ImageChangedError("x"), "engine": EngineError("x"), "interrupted": KeyboardInterrupt()}
    try:
        with RayEngine(workers=1) as engine:  # Ray is not started: nothing here needs it
            engine.keep_partitions(out, "a")
            (out.path / WORK_DIR).mkdir()
            if failure:
                raise errors[failure]
    except (ImageChangedError, EngineError, KeyboardInterrupt):
        pass
    assert (out.path / WORK_DIR).exists() == kept


def test_a_json_arrays_offset_index_reads_back_for_its_file_and_partition_size_only(tmp_path):
    from litdata.engines.partitions import index_array

    arr = tmp_path / "a.json"
    arr.write_text(json.dumps([{"id": i, "conversations": turns(f"Q{i}?", f"A{i}.")} for i in range(50)]))
    cuts = index_array(str(arr), 500, ReadLimits())
    assert len(cuts) > 3
    store = PartitionStore(tmp_path / ".litdata-work", run_key="k")
    store.save_index(str(arr), 500, cuts)
    assert store.load_index(str(arr), 500) == cuts
    assert store.load_index(str(arr), 501) is None and store.load_index(str(tmp_path / "b.json"), 500) is None
    assert PartitionStore(store.folder, run_key="other").load_index(str(arr), 500) is None
