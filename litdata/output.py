"""The output folder: what belongs to a compile, refusing to mix runs, and atomic writes of every file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

RUN_FILE = ".litdata-run.json"
_OWNED_GLOBS = ("shard-*.tar", "shard-*.tar.idx", ".shard-*.partial", "manifest.json", "rejects.jsonl", "harmful_audit.jsonl",
                "templates.parquet", ".*.tmp", RUN_FILE)


class OutputError(RuntimeError):
    pass


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def dump_json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class _JsonlWriter:
    def __init__(self, f) -> None:
        self.f = f

    def write(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode() + b"\n")


class OutputDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def owned(self) -> list[Path]:
        return sorted({p for g in _OWNED_GLOBS for p in self.path.glob(g)} | {p for p in [self.path / ".nv-meta"]
                                                                           if p.exists()})

    def prepare(self, *, run_key: str, overwrite: bool) -> None:
        """Create the folder; refuse to mix the output of two different jobs unless told to overwrite."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"--out {self.path}: cannot create the folder: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise OutputError(f"--out {self.path}: the folder is not writable")
        run_file = self.path / RUN_FILE
        previous = None
        if run_file.exists():
            with contextlib.suppress(ValueError, OSError):
                previous = json.loads(run_file.read_text()).get("run_key")
        existing = self.owned()
        if existing and previous != run_key and not overwrite:
            what = "a compile with different options" if previous else "litdata output from an unknown run"
            raise OutputError(f"--out {self.path} already holds {what}; pass --overwrite to replace it, "
                              "or choose another folder")
        if overwrite or previous != run_key:
            for p in existing:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        atomic_write(run_file, dump_json({"run_key": run_key}))

    @contextlib.contextmanager
    def jsonl(self, name: str) -> Iterator[_JsonlWriter]:
        final = self.path / name
        tmp = self.path / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                yield _JsonlWriter(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:  # a run that fails leaves no temporary behind (issue 12, item 16)
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)

    def write_templates(self, table) -> str:
        final = self.path / "templates.parquet"
        tmp = self.path / ".templates.parquet.tmp"
        table.write_parquet(tmp)
        os.replace(tmp, final)
        return hashlib.sha256(final.read_bytes()).hexdigest()

    def write_nv_meta(self, shards) -> None:
        from litdata.write.energon import ShardEntry, write_nv_meta

        write_nv_meta(self.path, [ShardEntry(name=s.name, sequences=s.sequences) for s in shards])

    def write_manifest(self, manifest: dict) -> None:
        # Written last: a manifest on disk means every shard it lists is complete.
        atomic_write(self.path / "manifest.json", dump_json(manifest))
