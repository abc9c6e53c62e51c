"""The output folder: what belongs to a compile, refusing to mix runs, and atomic writes of every file.

A compile deletes or replaces only files that a litdata run recorded writing. `.litdata-run.json` holds the run
key and the names the run wrote; a name is recorded *before* its file is created, so a killed run's files are
recorded too. A file at one of litdata's output names that no run recorded (another tool's `shard-000000.tar`,
a user's `.nv-meta/`) makes the compile refuse, with or without `--overwrite`, and so does an input (a source
or the image root) at one of those names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from litdata.shards.atomic import atomic_file, atomic_write
from litdata.shards.manifest import Manifest
from litdata.shards.schema import MANIFEST

if TYPE_CHECKING:
    from litdata.shards.writer import WrittenShard

RUN_FILE = ".litdata-run.json"
# Every name a compile writes in --out. A temporary of NAME is `.NAME.tmp`, `.NAME.partial` or `NAME.tmp`.
_OUTPUT_NAME = re.compile(r"shard-\d{6,}\.tar(\.idx)?|manifest\.json|rejects\.jsonl|harmful_audit\.jsonl"
                          r"|templates\.parquet|\.nv-meta"
                          r"|\.litdata-work")  # the Ray engine's completed partitions (litdata/engines/store.py)
_TEMPORARY = re.compile(r"\.(.+)\.(?:tmp|partial)|(.+)\.tmp")


def output_name(entry: str) -> str | None:
    """The litdata output name that the folder entry `entry` is, or is a temporary of; None for other files."""
    if _OUTPUT_NAME.fullmatch(entry):
        return entry
    m = _TEMPORARY.fullmatch(entry)
    base = m and (m.group(1) or m.group(2))
    return base if base and _OUTPUT_NAME.fullmatch(base) else None


class OutputError(RuntimeError):
    pass


def dump_json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class _JsonlWriter:
    def __init__(self, f) -> None:
        self.f = f

    def write(self, obj: dict) -> None:
        self.f.write(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode() + b"\n")


class OutputWriter:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._run_key = ""
        self._recorded: set[str] = set()  # written by an earlier run with the same key (kept for resume)
        self._claimed: set[str] = set()  # written by this run

    def prepare(self, *, run_key: str, overwrite: bool, inputs: Iterable[str] = ()) -> None:
        """Create the folder; refuse to mix the output of two different jobs unless told to overwrite, and refuse
        to touch what litdata did not write."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"--out {self.path}: cannot create the folder: {e.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise OutputError(f"--out {self.path}: the folder is not writable")
        previous, recorded = self._read_run_file()
        present = {e: base for e in os.listdir(self.path) if (base := output_name(e))}
        foreign = sorted(e for e, base in present.items() if base not in recorded)
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise OutputError(f"--out {self.path} holds {foreign[0]}{more}, which no litdata run recorded writing; "
                              "litdata replaces only its own files: move it away or choose another folder")
        self._refuse_inputs_inside(inputs)
        if present and previous != run_key and not overwrite:
            raise OutputError(f"--out {self.path} already holds a compile with different options or inputs; "
                              "pass --overwrite to replace it, or choose another folder")
        if overwrite or previous != run_key:
            for name in sorted(set(present.values())):
                self._remove(name)
            recorded = set()
        else:  # a resume: the shards it redoes may differ (an image changed), so the old manifest no longer holds
            self._remove("manifest.json")
        self._run_key, self._recorded, self._claimed = run_key, recorded, set()
        self._write_run_file(recorded)

    def claim(self, name: str) -> None:
        """Record `name` as this run's, before the file is created."""
        if not _OUTPUT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a litdata output name")
        if name not in self._claimed:
            self._claimed.add(name)
            self._write_run_file(self._recorded | self._claimed)

    def release(self, name: str) -> None:
        """Remove `name`, which this run claimed for its own use only (the Ray engine's work area), and no longer
        record it: the run file ends as if it had never been written."""
        self._remove(name)
        self._claimed.discard(name)
        self._recorded.discard(name)
        self._write_run_file(self._recorded | self._claimed)

    def _refuse_inputs_inside(self, inputs: Iterable[str]) -> None:
        out = os.path.realpath(self.path)
        for given in inputs:
            real = os.path.realpath(given)
            if os.path.commonpath([out, real]) != out or real == out:
                continue
            top = os.path.relpath(real, out).split(os.sep, 1)[0]
            if output_name(top):
                raise OutputError(f"--out {self.path}: the input {given} is at {top}, where litdata writes its "
                                  "output; move it out of --out or choose another folder")

    def _remove(self, name: str) -> None:
        for entry in (name, f".{name}.tmp", f".{name}.partial", f"{name}.tmp"):
            p = self.path / entry
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()

    def _read_run_file(self) -> tuple[str | None, set[str]]:
        with contextlib.suppress(ValueError, OSError, AttributeError, TypeError):
            run = json.loads((self.path / RUN_FILE).read_text())
            files = run.get("files", [])
            return run.get("run_key"), {f for f in files if isinstance(f, str) and _OUTPUT_NAME.fullmatch(f)}
        return None, set()

    def _write_run_file(self, files: set[str]) -> None:
        atomic_write(self.path / RUN_FILE, dump_json({"run_key": self._run_key, "files": sorted(files)}))

    def _drop_stale(self) -> None:
        """Remove what an earlier run with the same key wrote and this one did not (e.g. a shard beyond the end
        after an image changed size), and record exactly this run's files."""
        for name in sorted(self._recorded - self._claimed):
            self._remove(name)
        self._recorded = set()
        self._write_run_file(self._claimed)

    @contextlib.contextmanager
    def jsonl(self, name: str) -> Iterator[_JsonlWriter]:
        self.claim(name)
        with atomic_file(self.path / name) as tmp, open(tmp, "wb") as f:
            yield _JsonlWriter(f)

    def write_templates(self, table) -> str:
        self.claim("templates.parquet")
        with atomic_file(self.path / "templates.parquet") as tmp:
            table.write_parquet(tmp)
        return hashlib.sha256((self.path / "templates.parquet").read_bytes()).hexdigest()

    def write_nv_meta(self, written: Sequence[WrittenShard]) -> None:
        """The energon index of the shards a writer wrote, from the layouts it recorded (no shard is read back)."""
        from litdata.shards.energon import ITAR_SUFFIX, META_DIR, EnergonShard, write_nv_meta

        for name in [META_DIR, *(w.entry.name + ITAR_SUFFIX for w in written)]:
            self.claim(name)
        write_nv_meta(self.path, [EnergonShard(name=w.entry.name, sequences=w.entry.sequences, layout=w.layout)
                                  for w in written])

    def write_manifest(self, manifest: Manifest) -> None:
        # Written last: a manifest on disk means every shard it lists is complete.
        self.claim(MANIFEST)
        self._drop_stale()
        atomic_write(self.path / MANIFEST, dump_json(manifest.to_json()))
