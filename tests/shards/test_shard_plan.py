"""Where shards end is decided from sizes alone (`sample_size`, `ShardPlan`, `plan_shards`), without reading an
image: the Ray engine cuts the runs on its driver and writes the shards in parallel with `write_shard`, and
the boundaries and bytes must be those of the sequential `ShardWriter`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from litdata.pack.packer import PackedSequence
from litdata.records.document import Document, ImageBlob
from litdata.records.provenance import Provenance
from litdata.shards import writer as shards
from litdata.shards.energon import scan_shard
from litdata.shards.writer import _TAR_OVERHEAD, ShardPlan, build_sample, sample_size, write_shard
from tests.helpers.compile import compile_cli
from tests.helpers.shard_plan import plan_shards, sample_members


def member_size(seq: PackedSequence) -> int:
    """The size rule's own definition: every member, read images included, plus the tar overhead."""
    return sum(len(v) + _TAR_OVERHEAD for v in sample_members(seq).values())


def doc(i: int, n: int, images: tuple[ImageBlob, ...] = (), tiles: tuple[int, ...] = ()) -> Document:
    return Document(provenance=Provenance(source="s", index=i, id=str(i)), tokens=np.arange(n, dtype=np.int32),
                    classes=np.zeros(n, np.uint8), weights=np.ones(n, np.float32), images=images,
                    meta={"id": str(i), "note": "é" * i}, image_counts=tuple(7 for _ in images), image_tiles=tiles)


# Token counts around the points where np.save's header could change length (the digits of the shape).
@pytest.mark.parametrize("n", [1, 9, 10, 99, 100, 9999, 10_000, 99_999, 100_000, 1_000_000])
def test_sample_size_equals_the_members_written_for_any_length(n):
    seq = PackedSequence(docs=(doc(0, n), doc(1, 3)), length=n + 3)
    assert sample_size(seq) == member_size(seq)


def test_sample_size_counts_images_from_their_checked_size_without_reading_them(tmp_path):
    import hashlib

    data = b"\x89PNG" + bytes(range(256)) * 5
    path = tmp_path / "a.png"
    path.write_bytes(data)
    on_disk = ImageBlob(ext="png", path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    embedded = ImageBlob(ext="jpg", data=b"jpeg bytes")
    seq = PackedSequence(docs=(doc(0, 50, (on_disk, embedded), tiles=(1, 5)), doc(1, 20, (embedded,), (2,))),
                         length=70)
    size = sample_size(seq)
    assert size == member_size(seq)
    path.unlink()  # sizing never opens the file; writing it would fail now
    assert sample_size(seq) == size


def test_a_shard_ends_before_the_sample_that_would_overflow_it_and_always_takes_one():
    plan = ShardPlan(max_bytes=100, max_sequences=3)
    starts = [plan.add(size) for size in [60, 40, 1, 500, 10, 10, 10, 10]]
    # 60+40 fills 100 exactly; +1 would pass it; 500 alone is over but a shard takes one; the last is a 4th.
    assert starts == [False, False, True, True, True, False, False, True]


def test_write_shard_gives_the_sequential_writers_bytes(tmp_path):
    seqs = [PackedSequence(docs=(doc(i, 10 + i),), length=10 + i) for i in range(7)]
    claimed: list[str] = []
    seq_dir, par_dir = tmp_path / "seq", tmp_path / "par"
    seq_dir.mkdir()
    par_dir.mkdir()
    writer = shards.ShardWriter(seq_dir, max_bytes=1 << 30, max_sequences=3, claim=claimed.append)
    for s in seqs:
        writer.write(s)
    done = writer.close()
    entries = [w.entry for w in done]
    runs = plan_shards(seqs, max_bytes=1 << 30, max_sequences=3)
    assert runs == [range(3), range(3, 6), range(6, 7)]
    assert claimed == [e.name for e in entries]
    # Out of order, as parallel tasks finish.
    written = {i: write_shard(par_dir, i, run.start, [build_sample(s) for s in seqs[run.start:run.stop]])
               for i, run in reversed(list(enumerate(runs)))}
    assert [written[i] for i in range(len(runs))] == done
    for e in entries:
        assert (par_dir / e.name).read_bytes() == (seq_dir / e.name).read_bytes()
    assert sorted(p.name for p in par_dir.iterdir()) == [e.name for e in entries]  # no temporary left


def test_a_failed_write_shard_leaves_nothing(tmp_path):
    gone = ImageBlob(ext="png", path=str(tmp_path / "gone.png"), sha256="0" * 64, size=10)
    seqs = [PackedSequence(docs=(doc(0, 5),), length=5), PackedSequence(docs=(doc(1, 5, (gone,)),), length=5)]
    from litdata.images.file import ImageChangedError

    with pytest.raises(ImageChangedError):
        write_shard(tmp_path, 0, 0, [build_sample(s) for s in seqs])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [["--max-shard-sequences", "3"], ["--max-shard-bytes", "200KiB"]])
def test_the_plan_equals_the_sequential_writers_boundaries_on_the_demo(tmp_path, monkeypatch, options):
    """Compiled with the local engine: the shards it wrote hold exactly the runs that plan_shards makes of its
    sequences, by the sequence-count rule and by the byte rule (the demo's images included)."""
    seen: list[PackedSequence] = []
    real_write = shards.ShardWriter.write

    def recording_write(self, seq):
        seen.append(seq)
        return real_write(self, seq)

    monkeypatch.setattr(shards.ShardWriter, "write", recording_write)
    out = tmp_path / "out"
    assert compile_cli("demo", "--out", out, "--no-progress", *options) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    cfg = manifest["config"]
    runs = plan_shards(seen, max_bytes=cfg["max_shard_bytes"], max_sequences=cfg["max_shard_sequences"])
    assert len(runs) > 2
    assert [len(r) for r in runs] == [s["sequences"] for s in manifest["shards"]]
    assert all(sample_size(s) == member_size(s) for s in seen)
    assert any(d.images for s in seen for d in s.docs)


def test_the_demo_shards_are_the_ones_write_shard_makes(tmp_path, monkeypatch):
    """Each run of the plan, written on its own by write_shard, is byte for byte the demo's shard."""
    seen: list[PackedSequence] = []
    real_write = shards.ShardWriter.write
    monkeypatch.setattr(shards.ShardWriter, "write", lambda self, seq: (seen.append(seq), real_write(self, seq))[1])
    out = tmp_path / "out"
    assert compile_cli("demo", "--out", out, "--no-progress", "--max-shard-sequences", "4") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    again = Path(tmp_path / "again")
    again.mkdir()
    for i, run in enumerate(plan_shards(seen, max_bytes=1 << 40, max_sequences=4)):
        written = write_shard(again, i, run.start, [build_sample(s) for s in seen[run.start:run.stop]])
        entry = written.entry
        assert (again / entry.name).read_bytes() == (out / entry.name).read_bytes()
        assert entry.to_json() == manifest["shards"][i]
        assert written.layout == scan_shard(out / entry.name, entry.name)
