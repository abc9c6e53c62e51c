"""Megatron-Energon metadata (`.nv-meta/`) for a folder of litdata shards.

Energon only opens a WebDataset folder that `energon prepare` has indexed. We write that index ourselves,
in the layout of megatron-energon 7.4.1, for two reasons: energon is only a dev/training dependency, so the
compiler must not import it; and `energon prepare` is not deterministic (it writes a random `index.uuid`, and
with several workers the sqlite rows follow worker completion order). Everything here is derived from the tar
files alone, so the same shards give byte-identical metadata: read from them (`scan_shard`, the definition), or
taken from the layout the shard writer recorded as it wrote them (tests hold the two equal), which spares the
compile a second read of every shard.

Files written (all via temporary name + rename):
  SHARD.tar.idx             next to each shard: uint64 byte offset of each sample's first header, then the
                            end of the last sample (what energon's sequential/random loader reads)
  .nv-meta/.info.json       shard name -> sample count (what makes the folder an energon webdataset)
  .nv-meta/split.yaml       every shard in `train`
  .nv-meta/dataset.yaml     `CrudeWebdataset`, all parts kept, litdata subflavors so cookers can match
  .nv-meta/index.sqlite     samples/sample_parts tables (random access by key: primary/aux file stores, joins)
  .nv-meta/index.uuid       derived from the index content (energon keys its join-index caches on it)
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import struct
import tarfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import yaml

from litdata.shards.atomic import atomic_file, atomic_write
from litdata.shards.schema import FORMAT_NAME, FORMAT_VERSION

META_DIR = ".nv-meta"
ITAR_SUFFIX = ".idx"  # appended to the shard name: shard-000000.tar -> shard-000000.tar.idx
# The energon release whose on-disk layout this reproduces; recorded like `energon prepare` records its own version.
ENERGON_LAYOUT_VERSION = "7.4.1"
DEFAULT_SUBFLAVORS: Mapping[str, str | int] = {"litdata_format": FORMAT_NAME, "litdata_format_version": FORMAT_VERSION}

# Energon's member-name rules (megatron/energon/flavors/webdataset/config.py): the sample key is everything up
# to the first dot of the file name, the part is the rest; `__x__` members are skipped by energon.
_SPLIT_NAME = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_ENERGON_SKIPS = re.compile(r"__[^/]*__($|/)")
# Energon brace-expands shard names in split.yaml, so braces would change the meaning of a name.
_BAD_SHARD_NAME = re.compile(r"[{},\\]|(^|/)\.\.(/|$)")
_UUID_NAMESPACE = uuid.UUID("5b0f6c2e-8a57-5f3e-9d42-6c1a1e0b7d11")  # fixed: litdata energon index ids

# Schema and index statements as energon's SqliteIndexWriter creates them, so its readers find what they query.
_SCHEMA = (
    (
        "CREATE TABLE samples (tar_file_id INTEGER NOT NULL, sample_key TEXT NOT NULL UNIQUE, "
        "sample_index INTEGER NOT NULL, byte_offset INTEGER, byte_size INTEGER)"
    ),
    (
        "CREATE TABLE sample_parts (tar_file_id INTEGER, sample_index INTEGER, part_name TEXT, "
        "content_byte_offset INTEGER, content_byte_size INTEGER)"
    ),
)
_INDEXES = (
    "CREATE INDEX idx_samples_by_tar_and_idx ON samples(tar_file_id, sample_index)",
    "CREATE INDEX idx_sample_parts_seq ON sample_parts(tar_file_id, sample_index, content_byte_offset)",
    (
        "CREATE INDEX idx_sample_parts_full ON sample_parts"
        "(tar_file_id, sample_index, part_name, content_byte_offset, content_byte_size)"
    ),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardLayout:
    """Where the samples and members of one shard lie: what energon's index holds of it."""

    name: str
    samples: list[tuple[str, int, int]]  # (key, header offset, bytes up to the next sample)
    parts: list[tuple[int, str, int, int]]  # (sample index, part name, data offset, data size)
    end: int  # offset just past the last member (start of the end-of-archive blocks)


@dataclass(frozen=True, kw_only=True, slots=True)
class EnergonShard:
    """A finished shard in the output folder. `sequences`, when given, is checked against the tar's content.
    `layout`, when given, is what its writer recorded writing it, and the tar is not read."""

    name: str  # path relative to the output folder, e.g. "shard-000000.tar"
    sequences: int | None = None
    layout: ShardLayout | None = None


def write_nv_meta(
    out_dir: Path,
    shards: Sequence[EnergonShard],
    *,
    subflavors: Mapping[str, str | int] = DEFAULT_SUBFLAVORS,
) -> list[Path]:
    """Index `shards` (in this order) and write the energon metadata; returns every path written."""
    out_dir = Path(out_dir)
    if not shards:
        raise ValueError(f"{out_dir}: no shards to index for energon")
    names = [_checked_name(out_dir, s.name) for s in shards]
    if len(set(names)) != len(names):
        raise ValueError(f"{out_dir}: a shard is listed twice: {names}")
    meta = out_dir / META_DIR
    meta.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    with atomic_file(meta / "index.sqlite") as sqlite_tmp:
        # A crashed run's journal: sqlite would replay it into the new file (atomic_file removed its temporary).
        sqlite_tmp.with_name(sqlite_tmp.name + "-journal").unlink(missing_ok=True)
        with closing(sqlite3.connect(sqlite_tmp)) as db:
            for statement in _SCHEMA:
                db.execute(statement)
            for tar_id, (entry, name) in enumerate(zip(shards, names)):
                index = entry.layout if entry.layout is not None else scan_shard(out_dir / name, name)
                if index.name != name:
                    raise ValueError(f"{out_dir / name}: given the layout of {index.name}")
                if not index.samples:  # a read shard or a writer's layout alike
                    raise ValueError(f"{out_dir / name}: shard holds no samples; energon refuses empty shards")
                if entry.sequences is not None and entry.sequences != len(index.samples):
                    raise ValueError(f"{out_dir / name}: holds {len(index.samples)} samples, the writer reported "
                                     f"{entry.sequences}")
                counts[name] = len(index.samples)
                _insert(db, tar_id, index)
                _hash_index(digest, index)
                offsets = [offset for _, offset, _ in index.samples] + [index.end]
                written.append(atomic_write(out_dir / (name + ITAR_SUFFIX),
                                            struct.pack(f"<{len(offsets)}Q", *offsets)))
            for statement in _INDEXES:
                db.execute(statement)
            db.commit()
    written.append(meta / "index.sqlite")

    info = {"energon_version": ENERGON_LAYOUT_VERSION, "shard_counts": counts}
    split = {"split_parts": {"train": names}, "exclude": []}
    dataset = {"__module__": "megatron.energon", "__class__": "CrudeWebdataset", "subflavors": dict(subflavors)}
    index_id = uuid.uuid5(_UUID_NAMESPACE, digest.hexdigest())
    # .info.json last: it is what makes energon treat the folder as prepared.
    written += [
        atomic_write(meta / "index.uuid", str(index_id).encode()),
        atomic_write(meta / "split.yaml", yaml.safe_dump(split, sort_keys=False).encode()),
        atomic_write(meta / "dataset.yaml", yaml.safe_dump(dataset, sort_keys=False).encode()),
        atomic_write(meta / ".info.json", json.dumps(info, indent=2).encode()),
    ]
    return written


def _checked_name(out_dir: Path, name: str) -> str:
    if not name.endswith(".tar") or name.startswith("/") or _BAD_SHARD_NAME.search(name):
        raise ValueError(f"{out_dir}: shard name {name!r} must be a relative path ending in .tar, without braces")
    if not (out_dir / name).is_file():
        raise FileNotFoundError(f"{out_dir / name}: shard listed for the energon index does not exist")
    return name


def scan_shard(path: Path, name: str) -> ShardLayout:
    """Sample boundaries as energon's `prepare` computes them: a new sample starts where the key changes."""
    samples: list[tuple[str, int, int]] = []
    parts: list[tuple[int, str, int, int]] = []
    seen: set[str] = set()
    # "r:" (not "r:*"): energon seeks into the raw file, so a compressed tar would index but not load.
    with tarfile.open(path, mode="r:") as tar:
        for member in _members(tar, path):
            key, part = _split(member.name, path)
            if not samples or samples[-1][0] != key:
                if key in seen:
                    raise ValueError(f"{path}: members of sample {key!r} are not contiguous (or the key repeats)")
                seen.add(key)
                _close_last(samples, member.offset)
                samples.append((key, member.offset, -1))
            parts.append((len(samples) - 1, part, member.offset_data, member.size))
        end = tar.offset
    _close_last(samples, end)
    return ShardLayout(name=name, samples=samples, parts=parts, end=end)


def _members(tar: tarfile.TarFile, path: Path) -> Iterator[tarfile.TarInfo]:
    for member in tar:
        if not member.isreg():
            raise ValueError(f"{path}: member {member.name!r} is not a regular file; energon would skip it")
        yield member


def _split(member_name: str, path: Path) -> tuple[str, str]:
    match = _SPLIT_NAME.match(member_name)
    if match is None or _ENERGON_SKIPS.match(member_name):
        raise ValueError(f"{path}: member {member_name!r} is not KEY.PART with a dot-free key; energon would skip it")
    return match.group(1), match.group(2)


def _close_last(samples: list[tuple[str, int, int]], next_offset: int) -> None:
    if samples:
        key, offset, _ = samples[-1]
        samples[-1] = (key, offset, next_offset - offset)


def _insert(db: sqlite3.Connection, tar_id: int, index: ShardLayout) -> None:
    db.execute("SAVEPOINT shard")
    try:
        db.executemany(
            "INSERT INTO samples (tar_file_id, sample_key, sample_index, byte_offset, byte_size) VALUES (?, ?, ?, ?, ?)",
            ((tar_id, key, i, offset, size) for i, (key, offset, size) in enumerate(index.samples)),
        )
    except sqlite3.IntegrityError:
        db.execute("ROLLBACK TO SAVEPOINT shard")
        raise ValueError(f"{index.name}: {_duplicate_key(db, index)}") from None
    db.execute("RELEASE SAVEPOINT shard")
    db.executemany(
        "INSERT INTO sample_parts (tar_file_id, sample_index, part_name, content_byte_offset, content_byte_size) "
        "VALUES (?, ?, ?, ?, ?)",
        ((tar_id, *row) for row in index.parts),
    )


def _duplicate_key(db: sqlite3.Connection, index: ShardLayout) -> str:
    for key, _, _ in index.samples:
        row = db.execute("SELECT tar_file_id FROM samples WHERE sample_key = ?", (key,)).fetchone()
        if row is not None:
            return f"sample key {key!r} is already used in shard number {row[0]}; energon needs keys unique per folder"
    return "duplicate sample key"


def _hash_index(digest: hashlib._Hash, index: ShardLayout) -> None:
    digest.update(json.dumps([index.name, index.samples, index.parts, index.end]).encode())
