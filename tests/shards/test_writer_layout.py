"""The shard writer builds the tar bytes itself (`shards/tar.py`) and records where every sample and member lies;
the energon index is built from that record instead of reading the shards back. Both must be exactly what the
definitions give: webdataset's TarWriter over `tarfile` for the bytes, `scan_shard` (reading the tar) for the
index."""

from __future__ import annotations

import dataclasses
import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from litdata.pack.packer import PackedSequence
from litdata.records.document import Document
from litdata.records.provenance import Provenance
from litdata.shards.energon import ITAR_SUFFIX, META_DIR, EnergonShard, scan_shard, write_nv_meta
from litdata.shards.tar import MemberHeaders
from litdata.shards.writer import TAR_MTIME, build_sample, write_shard
from tests.helpers.compile import compile_cli

HEADERS = MemberHeaders(mtime=TAR_MTIME, mode=0o444, user="litdata", group="litdata")


def tarfile_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = size, TAR_MTIME, 0o444, "litdata", "litdata"
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


@pytest.mark.parametrize("name", ["000000000.json", "000000123.tokens.npy", "k.img007.jpeg", "a" * 99, "b" * 100,
                                  "c" * 101, "d/e.f", "\u00e9t\u00e9.json"])
@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 123456789, 8**11 - 1, 8**11])
def test_member_headers_are_the_ones_tarfile_builds(name, size):
    assert HEADERS.header(name, size) == tarfile_header(name, size)


def doc(i: int, n: int) -> Document:
    rng = np.random.default_rng(i)
    return Document(provenance=Provenance(source="s", index=i, id=str(i)),
                    tokens=rng.integers(0, 32000, n, dtype=np.int32), classes=np.zeros(n, np.uint8),
                    weights=rng.random(n, dtype=np.float32), meta={"id": str(i), "n": n})


@pytest.mark.parametrize("lengths", [[1], [7, 300, 4096], [10, 9, 99, 999, 9999, 100000]])
def test_a_shard_is_byte_for_byte_what_webdatasets_tar_writer_writes(tmp_path, lengths):
    seqs = [PackedSequence(docs=(doc(i, n), doc(i + 100, n // 2 + 1)), length=n + n // 2 + 1)
            for i, n in enumerate(lengths)]
    written = write_shard(tmp_path, 0, 5, [build_sample(s) for s in seqs])
    buf = io.BytesIO()
    with wds.TarWriter(buf, encoder=False, mtime=TAR_MTIME, user="litdata", group="litdata", mode=0o444) as tw:
        for i, seq in enumerate(seqs):
            members = build_sample(seq).read()
            for k, v in members.items():
                if k.endswith(".npy"):  # the npy bytes are np.save's own
                    saved = io.BytesIO()
                    np.save(saved, np.load(io.BytesIO(v), allow_pickle=False), allow_pickle=False)
                    assert saved.getvalue() == v
            tw.write({"__key__": f"{5 + i:09d}", **members})
    assert (tmp_path / written.entry.name).read_bytes() == buf.getvalue()
    assert written.layout == scan_shard(tmp_path / written.entry.name, written.entry.name)


def test_the_compiled_demos_index_is_the_one_read_from_its_shards(tmp_path):
    """The demo (images included) in several shards: .idx files and .nv-meta built from the writer's layouts
    are byte for byte those built by reading every shard."""
    out = tmp_path / "out"
    assert compile_cli("demo", "--out", out, "--no-progress", "--max-shard-sequences", "3") == 0
    names = sorted(p.name for p in out.glob("shard-*.tar"))
    assert len(names) > 2
    index_files = [META_DIR, *(n + ITAR_SUFFIX for n in names)]
    read_back = tmp_path / "read-back"
    read_back.mkdir()
    for name in names:
        shutil.copy(out / name, read_back / name)
    write_nv_meta(read_back, [EnergonShard(name=n) for n in names])  # no layouts: every shard is read

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for name in index_files
                for p in ([root / name] if (root / name).is_file() else sorted((root / name).rglob("*")))}

    assert files(out) == files(read_back)
    assert any(part.startswith("img") for name in names for _, part, _, _ in scan_shard(out / name, name).parts)


def test_a_layout_is_checked_against_the_shard_it_is_given_for(tmp_path):
    seqs = [PackedSequence(docs=(doc(i, 20),), length=20) for i in range(3)]
    first = write_shard(tmp_path, 0, 0, [build_sample(s) for s in seqs[:2]])
    second = write_shard(tmp_path, 1, 2, [build_sample(seqs[2])])
    names = [first.entry.name, second.entry.name]
    with pytest.raises(ValueError, match="shard-000001.tar: given the layout of shard-000000.tar"):
        write_nv_meta(tmp_path, [EnergonShard(name=n, layout=first.layout) for n in names])
    with pytest.raises(ValueError, match="shard-000000.tar: holds 2 samples, the writer reported 3"):
        write_nv_meta(tmp_path, [EnergonShard(name=names[0], sequences=3, layout=first.layout)])
    empty = dataclasses.replace(first.layout, samples=[], parts=[])
    with pytest.raises(ValueError, match="shard-000000.tar: shard holds no samples"):
        write_nv_meta(tmp_path, [EnergonShard(name=names[0], layout=empty)])
