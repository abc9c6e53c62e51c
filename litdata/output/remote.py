"""Run a compile with the chosen engine, to a local `--out` folder or to an fsspec URL (s3://bucket/prefix).

A URL output is compiled into a local staging folder with the local writer (atomic renames, fsync: object
stores have neither) and uploaded when complete, manifest.json last, so that a manifest in the bucket means
every file it lists is there. The rule against mixing jobs is the local one: the remote run file is fetched
first, so a different option set is refused unless --overwrite. Credentials come from the environment
through fsspec (litdata/fsio.py); nothing here writes them anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from litdata import fsio
from litdata.output.folder import RUN_FILE, OutputError, output_name


def compile_anywhere(cfg, engine=None):
    """compile_dataset(cfg, engine), with the engine closed afterwards and a URL --out staged and uploaded."""
    from litdata.pipeline import compile_dataset

    def run(c):
        if engine is None:
            return compile_dataset(c)
        with engine:
            return compile_dataset(c, engine)

    if not fsio.is_url(cfg.out):
        return run(cfg)
    url = str(cfg.out).rstrip("/")
    fs, root = fsio.filesystem(url)
    with tempfile.TemporaryDirectory(prefix="litdata-out-") as tmp:
        stage = Path(tmp)
        recorded: set[str] = set()
        if fs.isfile(f"{root}/{RUN_FILE}"):
            fs.get_file(f"{root}/{RUN_FILE}", str(stage / RUN_FILE))
            recorded = _recorded(stage / RUN_FILE)
        if engine is not None:  # the staging folder is on this machine only: Ray workers could not write there
            engine.shards_on_driver = True
        try:
            result = run(dataclasses.replace(cfg, out=stage))
        except OutputError as e:  # name the folder the user gave, not the staging one
            raise OutputError(str(e).replace(str(stage), url)) from None
        _upload(fs, stage, root, recorded)
    return result


def _recorded(run_file: Path) -> set[str]:
    """The output names an earlier run recorded in the folder's run file (the only files litdata may delete)."""
    try:
        files = json.loads(run_file.read_text()).get("files", [])
    except (ValueError, OSError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and output_name(f) == f}


def _upload(fs, stage: Path, root: str, recorded: set[str]) -> None:
    local = {p.relative_to(stage).as_posix(): p for p in sorted(stage.rglob("*")) if p.is_file()}
    # What an earlier run recorded and this one did not write (more shards, say) goes before the new manifest;
    # files no litdata run recorded are never deleted, as for a local --out.
    remote = [p for p in fs.find(root) if p[len(root) + 1:].split("/", 1)[0] in recorded] if fs.isdir(root) else []
    for path in remote:
        if path[len(root) + 1:] not in local:
            fs.rm_file(path)
    for rel, path in local.items():
        if rel != "manifest.json":
            fs.put_file(str(path), f"{root}/{rel}")
    if "manifest.json" in local:
        fs.put_file(str(local["manifest.json"]), f"{root}/manifest.json")

