"""Stream every record of every input file as a Conversation or a Reject, in order."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.parquet as pq

from litdata import fsio
from litdata.config import ReadLimits
from litdata.read.jsonarray.reader import iter_json_array
from litdata.read.jsonl import iter_jsonl
from litdata.read.normalize import normalize_record
from litdata.read.parquet import ParquetOpenError, iter_parquet, open_parquet
from litdata.records import Conversation, Provenance, RecordProblem, Reject

DEFAULT_LIMITS = ReadLimits()
FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class SourceError(Exception):
    """An input file that cannot be read at all: missing, unreadable, or not a supported format."""


def read_sources(paths: Sequence[str | Path], limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Conversation | Reject]:
    """Every record of every source, in order: exactly one Conversation or Reject per record.

    Every path is checked before the first record is read, so a mistyped third input fails at once
    rather than after the first two have been read.
    """
    formats = [(path, source_format(path)) for path in paths]
    return _stream(formats, limits)


def read_source(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[Conversation | Reject]:
    return read_sources([path], limits)


def source_format(path: str | Path) -> str:
    """'json' (an array), 'jsonl' or 'parquet'; SourceError when the file cannot be read as any of them.
    `path` may be an fsspec URL (s3://bucket/data.jsonl)."""
    try:
        kind = fsio.kind(path)
    except (OSError, ValueError, ImportError) as e:  # no such bucket, no back-end for the scheme, ...
        raise SourceError(f"{path}: cannot be read: {e}") from None
    if kind == "missing":
        raise SourceError(f"{path}: no such file")
    if kind != "file":
        raise SourceError(f"{path}: not a regular file")
    suffix = PurePosixPath(str(path)).suffix if fsio.is_url(path) else Path(path).suffix
    fmt = FORMATS.get(suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: unknown format {suffix!r} (supported: {', '.join(FORMATS)})")
    if fmt != "json":
        return fmt
    first = _first_char(path)
    if first == "[":
        return "json"
    if first == "{":  # JSON Lines saved as .json
        return "jsonl"
    if first == "":
        raise SourceError(f"{path}: the file is empty; expected a JSON array of records")
    raise SourceError(f"{path}: expected a JSON array ('[') or JSON lines ('{{'), found {first!r} first")


def _first_char(path: str | Path) -> str:
    try:
        with fsio.open_binary(path) as f:
            head = f.read(3)
            if head != b"\xef\xbb\xbf":  # a UTF-8 byte order mark is not content
                f.seek(0)
            while block := f.read(1 << 16):
                stripped = block.lstrip(b" \t\r\n")
                if stripped:
                    return chr(stripped[0])
    except OSError as e:
        raise SourceError(f"{path}: cannot be read: {e}") from None
    return ""


def _stream(formats: list[tuple[str | Path, str]], limits: ReadLimits) -> Iterator[Conversation | Reject]:
    for path, fmt in formats:
        source = str(path)
        try:
            for index, value in _records(path, fmt, limits):
                yield record_item(value, source, index, limits)
        except OSError as e:
            raise SourceError(f"{source}: reading failed: {e}") from None


def _records(path: str | Path, fmt: str, limits: ReadLimits) -> Iterator[tuple[int, Any]]:
    if fmt == "parquet":
        with opened_parquet(path) as pf:
            yield from iter_parquet(pf)
        return
    with fsio.open_binary(path) as f:
        if fmt == "jsonl":
            yield from iter_jsonl(f, max_record_bytes=limits.max_record_bytes)
        else:
            yield from iter_json_array(f, max_record_bytes=limits.max_record_bytes)


@contextlib.contextmanager
def opened_parquet(path: str | Path) -> Iterator[pq.ParquetFile]:
    """A ParquetFile over a local path or an fsspec URL; SourceError when it is not readable Parquet."""
    raw = fsio.open_binary(path) if fsio.is_url(path) else None
    try:
        try:
            pf = open_parquet(raw if raw is not None else Path(path))
        except ParquetOpenError as e:
            raise SourceError(f"{path}: {e}") from None
        try:
            yield pf
        finally:
            pf.close()
    finally:
        if raw is not None:
            raw.close()


def record_item(value: Any, source: str, index: int, limits: ReadLimits) -> Conversation | Reject:
    """One record as read (parsed JSON, a Parquet row, or the reader's RecordProblem) -> Conversation or Reject."""
    if isinstance(value, RecordProblem):
        return value.reject(Provenance(source=source, index=index, id=None))
    return normalize_record(value, source=source, index=index, limits=limits)
