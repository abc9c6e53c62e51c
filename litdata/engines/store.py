"""Completed partitions of a Ray compile, kept in the output folder so that a rerun after the driver died
skips them.

They live in `--out/.litdata-work/`, a name the output folder records as the run's before it is created
(litdata/output/folder.py): a rerun with other options is refused unless `--overwrite`, which removes it, as it
does the shards. Each file is named by a hash of the run key (every option and the inputs' sha256) and of the
partition (source, cut, and numbering), so a result is only ever reused by the same job for the same piece of
input; `--partition-size` changes the partitions and so the names.

The offset index of each JSON array is kept too, so a rerun does not read the arrays once more to cut them.

Nothing is pickled: the index is JSON; pass 1 is JSON plus the shape rows as Parquet; pass 2 is JSON (provenance, rejects,
harmful hits of each item, document metadata) plus one `.npy` per array column, read back with `allow_pickle=False`. The
JSON file is written last and names the sha256 of the files before it, so a file cut short by a kill, or
altered since, is recomputed instead of used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from litdata.engines.partitions import Partition
from litdata.engines.tasks import Counted
from litdata.read.jsonarray.index import JsonArrayCut
from litdata.records import AuditHit, Document, Provenance, Reject, RejectReason
from litdata.records.document import ImageBlob
from litdata.shards.atomic import atomic_write

WORK_DIR = ".litdata-work"
FORMAT = 2  # of the files below; a store written by another format is not read (2: hits ride on their items)
_COLUMNS = ("tokens", "classes", "weights")
log = logging.getLogger(__name__)


class PartitionStore:
    """Results of pass 1 ("count") and pass 2 ("encode") by partition, under `folder` (`--out/.litdata-work`)."""

    def __init__(self, folder: Path, run_key: str) -> None:
        self.folder, self.run_key = Path(folder), run_key

    def has(self, kind: str, part: Partition) -> bool:
        return self._path(kind, part, ".json").is_file()

    # -- the offset index of a JSON array ------------------------------------------------------------------------
    def save_index(self, source: str, partition_bytes: int, cuts: list[JsonArrayCut]) -> None:
        self._save("index", _Array(source, partition_bytes), {"cuts": [dataclasses.asdict(c) for c in cuts]}, {})

    def load_index(self, source: str, partition_bytes: int) -> list[JsonArrayCut] | None:
        loaded = self._load("index", _Array(source, partition_bytes))
        try:
            return None if loaded is None else [JsonArrayCut(**c) for c in loaded[0]["cuts"]]
        except (KeyError, TypeError):
            return None

    # -- pass 1 ------------------------------------------------------------------------------------------------
    def save_counted(self, part: Partition, got: Counted) -> None:
        files = {}
        if got.shape_rows is not None:
            import pyarrow.parquet as pq

            sink = io.BytesIO()
            pq.write_table(got.shape_rows, sink)
            files[".parquet"] = sink.getvalue()
        head = {"lines": got.lines, "records": got.records, "conversations": got.conversations}
        self._save("count", part, head, files)

    def load_counted(self, part: Partition) -> Counted | None:
        loaded = self._load("count", part)
        if loaded is None:
            return None
        head, files = loaded
        rows = None
        if ".parquet" in files:
            import pyarrow.parquet as pq

            rows = pq.read_table(io.BytesIO(files[".parquet"]))
        return Counted(lines=head["lines"], records=head["records"], conversations=head["conversations"],
                       shape_rows=rows)

    # -- pass 2 ------------------------------------------------------------------------------------------------
    def save_encoded(self, part: Partition, batches: list[list[Document | Reject]]) -> None:
        docs = [d for items in batches for d in items if isinstance(d, Document)]
        dtypes = {c: getattr(docs[0], c).dtype.str for c in _COLUMNS} if docs else {}
        if any(getattr(d, c).dtype.str != dtypes[c] for d in docs for c in _COLUMNS):
            log.warning("partition %s not kept for resuming: its documents' arrays differ in type", part.describe())
            return
        embedded: list[bytes] = []
        head = {"dtypes": dtypes, "batches": [[_item_json(i, embedded) for i in items] for items in batches]}
        files = {f".{c}.npy": _npy(np.concatenate([getattr(d, c) for d in docs]) if docs
                                   else np.zeros(0, dtype=np.uint8)) for c in _COLUMNS}
        files[".images.bin"] = b"".join(embedded)
        self._save("encode", part, head, files)

    def load_encoded(self, part: Partition) -> list[list[Document | Reject]] | None:
        loaded = self._load("encode", part)
        if loaded is None:
            return None
        head, files = loaded
        columns = {c: np.load(io.BytesIO(files[f".{c}.npy"]), allow_pickle=False) for c in _COLUMNS}
        if any(columns[c].dtype.str != t for c, t in head["dtypes"].items()):
            return None
        reader = _Reader(columns, files[".images.bin"])
        return [[reader.item(i) for i in items] for items in head["batches"]]

    # -- files ---------------------------------------------------------------------------------------------------
    def _path(self, kind: str, part: Partition | _Array, suffix: str) -> Path:
        who = json.dumps({"format": FORMAT, "run_key": self.run_key, "kind": kind,
                          "partition": dataclasses.asdict(part)}, sort_keys=True)
        return self.folder / f"{kind}-{part.number:06d}-{hashlib.sha256(who.encode()).hexdigest()[:24]}{suffix}"

    def _save(self, kind: str, part: Partition | _Array, head: dict, files: dict[str, bytes]) -> None:
        """The data files first, then the JSON that names their sha256: a JSON file means the rest is there."""
        self.folder.mkdir(exist_ok=True)
        for suffix, data in files.items():
            atomic_write(self._path(kind, part, suffix), data)
        head = {**head, "partition": part.describe(), "files": {s: hashlib.sha256(d).hexdigest()
                                                                for s, d in files.items()}}
        atomic_write(self._path(kind, part, ".json"), json.dumps(head).encode())  # keys unsorted: meta keeps its order

    def _load(self, kind: str, part: Partition | _Array) -> tuple[dict, dict[str, bytes]] | None:
        """(the JSON, the data files by suffix); None when anything is missing or not what was written."""
        try:
            head = json.loads(self._path(kind, part, ".json").read_bytes())
            files = {s: self._path(kind, part, s).read_bytes() for s in head["files"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if any(hashlib.sha256(d).hexdigest() != head["files"][s] for s, d in files.items()):
            return None
        return head, files


@dataclasses.dataclass(frozen=True)
class _Array:
    """What a JSON array's offset index depends on besides the run key (which holds max_record_bytes)."""

    source: str
    partition_bytes: int
    number: int = 0

    def describe(self) -> str:
        return f"{self.source} (offset index)"


def _npy(a: np.ndarray) -> bytes:
    sink = io.BytesIO()
    np.save(sink, a, allow_pickle=False)
    return sink.getvalue()


def _item_json(item: Document | Reject, embedded: list[bytes]) -> dict[str, Any]:
    p = item.provenance
    where = {"source": p.source, "index": p.index, "id": p.id, "audit": [h.to_json() for h in item.audit]}
    if isinstance(item, Reject):
        return {"reject": {**where, "reason": item.reason.value, "message": item.message}}
    images = []
    for b in item.images:
        if b.data is not None:
            embedded.append(b.data)
        images.append({"ext": b.ext, "path": b.path, "data": None if b.data is None else len(b.data),
                       "width": b.width, "height": b.height, "sha256": b.sha256, "size": b.size})
    return {"document": {**where, "tokens": item.n_tokens, "images": images, "truncated_from": item.truncated_from,
                         "meta": item.meta, "image_counts": list(item.image_counts),
                         "image_tiles": list(item.image_tiles)}}


class _Reader:
    """Items back from their JSON, taking each document's arrays and embedded images in order."""

    def __init__(self, columns: dict[str, np.ndarray], embedded: bytes) -> None:
        self.columns, self.embedded = columns, embedded
        self.at = self.byte = 0

    def item(self, obj: dict) -> Document | Reject:
        if "reject" in obj:
            r = obj["reject"]
            return Reject(provenance=Provenance(source=r["source"], index=r["index"], id=r["id"]),
                          reason=RejectReason(r["reason"]), message=r["message"], audit=_audit(r))
        d = obj["document"]
        n = d["tokens"]
        arrays = {c: self.columns[c][self.at : self.at + n] for c in _COLUMNS}
        self.at += n
        images = []
        for b in d["images"]:
            data = None
            if b["data"] is not None:
                data = self.embedded[self.byte : self.byte + b["data"]]
                self.byte += b["data"]
            images.append(ImageBlob(ext=b["ext"], path=b["path"], data=data, width=b["width"], height=b["height"],
                                    sha256=b["sha256"], size=b["size"]))
        return Document(provenance=Provenance(source=d["source"], index=d["index"], id=d["id"]), **arrays,
                        images=tuple(images), truncated_from=d["truncated_from"], meta=d["meta"],
                        image_counts=tuple(d["image_counts"]), image_tiles=tuple(d["image_tiles"]), audit=_audit(d))


def _audit(obj: dict) -> tuple[AuditHit, ...]:
    return tuple(AuditHit(**h) for h in obj["audit"])
