"""Hostile shards and manifests (issue 12, items 2, 3 and 11): `verify`, `inspect` and the Megatron loader trust
no size from a tar or .npy header and no shard name from a manifest, and a loader state only resumes the dataset
it was saved on. Each case is refused with one line naming the shard and member, before anything is allocated."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from adapters.megatron.data import PackedShardDataset
from adapters.megatron.shards import CorruptShardError
from litdata.inspect.reader import CompiledFolder, InspectError
from litdata.verify.folder import verify
from tests.helpers.shard_fixtures import (
    Fixture,
    append_raw_member,
    edit_shard,
    npy_claiming,
    refresh_manifest,
    sparse_member,
    write_shards,
)

SEQ = 256


@pytest.fixture
def shards(tmp_path: Path) -> Fixture:
    return write_shards(tmp_path / "out", documents=40, seq_len=SEQ, sequences_per_shard=3)


@pytest.fixture
def compiled(demo_out: Path, tmp_path: Path) -> Path:
    """A copy of the compiled demo (verify and inspect need a compiler's full manifest)."""
    out = tmp_path / "c"
    shutil.copytree(demo_out, out)
    return out


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: what this file guards against includes reading /dev/zero forever."""

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_shard(out: Path) -> Path:
    return out / json.loads((out / "manifest.json").read_text())["shards"][0]["name"]


def last_key(path: Path) -> str:
    import tarfile

    with tarfile.open(path) as tar:
        return tar.getmembers()[-1].name.partition(".")[0]


def every_reader_refuses(out: Path, *, loader_data: Path | None = None) -> tuple[str, str, str]:
    """(verify's problems, inspect's error, the loader's error) for a folder: each must refuse it."""
    rep = verify(out)
    assert not rep.ok
    with pytest.raises(InspectError) as inspect_err:
        list(CompiledFolder.open(out).sequences())
    with pytest.raises((CorruptShardError, ValueError)) as loader_err:
        list(PackedShardDataset(loader_data or out, shuffle=False))
    return "\n".join(rep.problems), str(inspect_err.value), str(loader_err.value)


# ---- sizes from tar headers ---------------------------------------------------------------------------


def test_a_sparse_member_is_refused_before_it_is_expanded(compiled):
    """A GNU sparse member stores 10 bytes and expands to 300 MiB: no reader may read it (or allocate for it)."""
    shard = first_shard(compiled)
    append_raw_member(shard, sparse_member(f"{last_key(shard)}.img099.png", b"x" * 10, 300 << 20))
    refresh_sizes(compiled)
    before = max_rss_mib()
    texts = every_reader_refuses(compiled)
    for text in texts:
        assert "img099.png" in text and "not a regular file (a sparse member)" in text, text
    assert max_rss_mib() - before < 200  # the 300 MiB were never materialised


def test_the_loader_skips_a_shard_with_a_sparse_member_under_skip_corrupt(shards):
    """The sparse member belongs to the last sequence of shard 1; the loader has streamed the two before it."""
    path = shards.shard_path(1)
    append_raw_member(path, sparse_member(f"{shards.keys[5]}.img000.png", b"x" * 10, 300 << 20))
    refresh_manifest(shards.out)
    ds = PackedShardDataset(shards.out, shuffle=False, skip_corrupt=True)
    got = [s.key for s in ds]
    assert got == [k for k in shards.keys if k != shards.keys[5]]  # the rest of the shard: its last sequence
    assert (ds.stats.shards_skipped, ds.stats.sequences_skipped) == (1, 1)
    assert "sparse member" in ds.stats.errors[0]


def test_an_array_member_larger_than_seq_len_allows_is_refused_unread(shards):
    """A manifest with seq_len 256 bounds every array member to a few KB, whatever the tar header says."""
    key = shards.keys[0]
    big = np.zeros(20_000, np.int32)
    edit_shard(shards.shard_path(0), lambda n, d: npy_claiming(big.shape, big.tobytes()) if n == f"{key}.tokens.npy"
               else d)
    refresh_manifest(shards.out)
    with pytest.raises(CorruptShardError, match=rf"member {key}\.tokens\.npy: \d+ bytes, over the bound"):
        list(PackedShardDataset(shards.out, shuffle=False))


# ---- sizes from .npy headers --------------------------------------------------------------------------


def refresh_sizes(out: Path) -> None:
    """Make a compiled manifest agree with edited shards (size, sha256), so the member checks are what fail."""
    import hashlib

    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["shards"]:
        data = (out / entry["name"]).read_bytes()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (out / "manifest.json").write_text(json.dumps(manifest))


def replace_first(shard: Path, suffix: str, data: bytes) -> str:
    import tarfile

    with tarfile.open(shard) as tar:
        key = tar.getmembers()[0].name.partition(".")[0]
    edit_shard(shard, lambda n, d: data if n == f"{key}.{suffix}" else d)
    return key


def test_an_npy_header_declaring_a_trillion_items_is_refused_without_allocating(compiled):
    key = replace_first(first_shard(compiled), "tokens.npy", npy_claiming((10**12,), b"\0" * 40))
    refresh_sizes(compiled)
    for text in every_reader_refuses(compiled):
        assert "tokens.npy" in text and "declares 1000000000000 items" in text, text
        assert key in text


def test_an_npy_header_declaring_more_than_the_member_holds_is_refused(shards):
    key = shards.keys[3]
    edit_shard(shards.shard_path(1), lambda n, d: npy_claiming((100,), b"\0" * 40, "<f4")
               if n == f"{key}.weights.npy" else d)
    refresh_manifest(shards.out)
    with pytest.raises(CorruptShardError, match=r"declares 100 items \(400 bytes\), the member holds 40"):
        list(PackedShardDataset(shards.out, shuffle=False))
    ds = PackedShardDataset(shards.out, shuffle=False, skip_corrupt=True)  # one shard's problem, not a crash
    assert len(list(ds)) == len(shards.keys) - 3 and ds.stats.shards_skipped == 1


# ---- shard names from the manifest ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/dev/zero", "../../../../etc/hostname", "sub/shard-000000.tar", "shard-0.tar"])
def test_a_manifest_shard_name_must_be_a_plain_shard_file_name(compiled, name):
    manifest = json.loads((compiled / "manifest.json").read_text())
    manifest["shards"][0]["name"] = name
    (compiled / "manifest.json").write_text(json.dumps(manifest))
    with deadline(60):
        verify_text, inspect_text, loader_text = every_reader_refuses(compiled)
    assert verify_text == f"manifest.json: shard name {name!r}: not a shard file name of the form shard-NNNNNN.tar"
    for text in (inspect_text, loader_text):
        assert "manifest.json" in text and repr(name) in text and "\n" not in text


def test_a_shard_that_is_a_fifo_or_a_symlink_out_of_the_folder_is_refused(compiled, tmp_path):
    shard = first_shard(compiled)
    outside = tmp_path / "elsewhere.tar"
    shard.rename(outside)
    shard.symlink_to(outside)
    with deadline(60):
        texts = every_reader_refuses(compiled)
    for text in texts:
        assert shard.name in text and "symbolic link" in text, text
    shard.unlink()
    os.mkfifo(shard)
    with deadline(60):  # opening a FIFO for reading would block until a writer comes
        texts = every_reader_refuses(compiled)
    for text in texts:
        assert shard.name in text and "not a regular file" in text, text


# ---- loader state -------------------------------------------------------------------------------------


def test_a_loader_state_is_refused_by_another_dataset(tmp_path):
    a = write_shards(tmp_path / "a", documents=40, seq_len=SEQ, sequences_per_shard=3, seed=1)
    b = write_shards(tmp_path / "b", documents=40, seq_len=SEQ, sequences_per_shard=3, seed=2)
    assert len(json.loads((a.out / "manifest.json").read_text())["shards"]) == len(
        json.loads((b.out / "manifest.json").read_text())["shards"])  # same shard count: only the data differs
    ds = PackedShardDataset(a.out, shuffle=False)
    it = iter(ds)
    next(it)
    state = ds.state_dict()
    with pytest.raises(ValueError, match="cannot resume: the state was saved on another dataset"):
        PackedShardDataset(b.out, shuffle=False).load_state_dict(state)
    resumed = PackedShardDataset(a.out, shuffle=False)
    resumed.load_state_dict(state)  # its own dataset still resumes
    assert [s.key for s in resumed] == a.keys[1:]
