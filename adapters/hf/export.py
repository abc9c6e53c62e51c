"""Text-only export: one Parquet row per document, for tools that take tokenized datasets.

`python -m adapters.hf.export DIR OUT.parquet [--skip-image-documents] [--mode vit] [--weight instruction=0.5]`
writes the columns `id` (the source record's id), `input_ids`, `labels`, `attention_mask`, `loss_weights`, which
`datasets.load_dataset("parquet", data_files=OUT)` reads. Rows are documents, not packed sequences: a tool that
pads or packs them itself cannot then attend across documents. Labels follow transformers' convention (the model
shifts them): `labels[i] = input_ids[i]` where `loss_weights[i] > 0`, else -100; a document's first label is -100.

Documents with images cannot be used without their pixels, so they are refused (the error names the document);
`--skip-image-documents` leaves them out and reports how many. Rows come in manifest order, so the file is the
same bytes for the same folder. It is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.hf.reader import CorruptShardError, Sample, decode, iter_members, open_folder
from adapters.megatron.reweigh import Reweigh
from litdata.shards.atomic import atomic_file

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("input_ids", pa.list_(pa.int32())),
    ("labels", pa.list_(pa.int32())),
    ("attention_mask", pa.list_(pa.int8())),
    ("loss_weights", pa.list_(pa.float32())),
])
ROWS_PER_GROUP = 1024


class ExportError(RuntimeError):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportReport:
    documents: int  # rows written
    skipped_image_documents: int


def export_parquet(data, out: str | os.PathLike, *, skip_image_documents: bool = False,
                   reweigh: Reweigh | None = None) -> ExportReport:
    folder = open_folder(data)
    out = Path(out)
    written = skipped = 0
    rows: list[dict] = []
    with atomic_file(out) as tmp, pq.ParquetWriter(tmp, SCHEMA) as writer:
        for info in folder.shards:
            for key, members in iter_members(info):
                sample = decode(folder, info.name, key, members)
                if reweigh is not None:
                    sample = _reweighed(sample, reweigh)
                for doc_id, row in _documents(sample):
                    if row is None:
                        if not skip_image_documents:
                            raise ExportError(f"{info.name}:{key}: document {doc_id} holds images, which a "
                                              "text-only export cannot carry; pass --skip-image-documents to "
                                              "leave such documents out")
                        skipped += 1
                        continue
                    rows.append(row)
                    if len(rows) == ROWS_PER_GROUP:
                        writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                        written, rows = written + len(rows), []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            written += len(rows)
    return ExportReport(documents=written, skipped_image_documents=skipped)


def _reweighed(sample: Sample, reweigh: Reweigh) -> Sample:
    from dataclasses import replace

    return replace(sample, weights=reweigh.apply(sample.classes, sample.cu_seqlens))


def _documents(sample: Sample) -> Iterator[tuple[str, dict | None]]:
    """(id, row) for each document of one packed sequence; the row is None for a document with images."""
    docs = sample.meta.get("documents") if isinstance(sample.meta, dict) else None
    cu = sample.cu_seqlens
    for d in range(len(cu) - 1):
        lo, hi = int(cu[d]), int(cu[d + 1])
        doc = docs[d] if isinstance(docs, list) and d < len(docs) and isinstance(docs[d], dict) else {}
        doc_id = str(doc.get("id", f"{sample.shard}:{sample.key}:{d}"))
        if np.any((sample.placeholders >= lo) & (sample.placeholders < hi)):
            yield doc_id, None
            continue
        ids, weights = sample.tokens[lo:hi], sample.weights[lo:hi]
        yield doc_id, {
            "id": doc_id,
            "input_ids": ids.tolist(),
            "labels": np.where(weights > 0, ids, -100).tolist(),
            "attention_mask": [1] * (hi - lo),
            "loss_weights": weights.tolist(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.hf.export", description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a compiled litdata folder")
    parser.add_argument("out", help="the Parquet file to write")
    parser.add_argument("--skip-image-documents", action="store_true", help="leave out documents with images")
    parser.add_argument("--mode", choices=("lit", "vit"), default=None, help="recompute weights from the classes")
    parser.add_argument("--weight", action="append", default=None, metavar="CLASS=W", help="override one class")
    args = parser.parse_args(argv)
    try:
        reweigh = Reweigh.from_cli(args.mode or "lit", args.weight) if args.mode or args.weight else None
    except ValueError as exn:
        parser.error(str(exn))
    try:
        report = export_parquet(args.data, args.out, skip_image_documents=args.skip_image_documents, reweigh=reweigh)
    except (ExportError, CorruptShardError, ValueError, OSError) as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 1
    print(f"wrote {report.documents} documents to {args.out}; left out {report.skipped_image_documents} "
          "documents with images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
