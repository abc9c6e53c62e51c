"""sha256 of files, read in 1 MiB blocks so that memory does not depend on the file size."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike) -> str:
    from litdata.fsio import open_binary  # a source may be an fsspec URL (s3://...)

    h = hashlib.sha256()
    with open_binary(path) as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
