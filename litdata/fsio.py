"""Local paths and fsspec URLs (`s3://`, `gs://`, ...) behind one small interface, so that sources, the image
root and the output folder can live on object storage.

Credentials are never passed here: fsspec's back-ends read them from the environment (AWS_ACCESS_KEY_ID,
AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS, ...), so they never reach a manifest, a log or a Ray task
argument. fsspec is imported only when a URL is used; local paths take the plain `open`/`os` route as before.
"""

from __future__ import annotations

import io
import os
import re
from typing import IO, Any

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | os.PathLike) -> bool:
    """True for `scheme://...` (file:// included: fsspec opens it like any other URL)."""
    return bool(_URL.match(str(path)))


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL."""
    from fsspec.core import url_to_fs

    return url_to_fs(url)


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """A seekable binary reader: fsspec's buffered random-access file for a URL, `open` otherwise."""
    if not is_url(path):
        return open(path, "rb")
    fs, inner = filesystem(str(path))
    # fsspec's files have no readline(limit), which the JSONL reader uses to bound a line's memory.
    return io.BufferedReader(fs.open(inner, "rb"), buffer_size=1 << 20)


def read_bytes(path: str | os.PathLike) -> bytes:
    """A whole (small) file: one GET for a URL, where opening a file object costs a HEAD request first."""
    if not is_url(path):
        with open(path, "rb") as f:
            return f.read()
    fs, inner = filesystem(str(path))
    return fs.cat_file(inner)


def size(path: str | os.PathLike) -> int:
    if not is_url(path):
        return os.path.getsize(path)
    fs, inner = filesystem(str(path))
    return int(fs.size(inner))


def kind(path: str | os.PathLike) -> str:
    """'file', 'directory', 'other' (a FIFO, a device: never to be read as data) or 'missing'."""
    if not is_url(path):
        if not os.path.lexists(path):
            return "missing"
        return "file" if os.path.isfile(path) else "directory" if os.path.isdir(path) else "other"
    fs, inner = filesystem(str(path))
    if fs.isfile(inner):
        return "file"
    return "directory" if fs.isdir(inner) else "missing"


def join(root: str, rel: str) -> str:
    """`rel` under `root`, for URLs with '/' whatever the platform."""
    return root.rstrip("/") + "/" + rel if is_url(root) else os.path.join(root, rel)
