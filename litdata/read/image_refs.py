"""Turn the image fields of a record (`image`, `images`, OpenAI image parts) into ImageRefs.

Only the shape is checked here; whether the file exists and decodes is `images.resolve_image`'s job,
which runs later in the workers.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote

from litdata.read.problem import json_type
from litdata.records import ImageRef, RecordProblem, RejectReason

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def record_images(record: dict) -> list[ImageRef]:
    """The record-level images: `image` (a path, a list of paths, an embedded image) or its alias `images`."""
    single, plural = record.get("image"), record.get("images")
    if single is not None and plural is not None:
        raise RecordProblem(RejectReason.BAD_FIELD_TYPE, "record has both 'image' and 'images'; keep one of them")
    key, value = ("image", single) if single is not None else ("images", plural)
    if value is None:
        return []
    if isinstance(value, list):
        return [image_ref(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return [image_ref(value, key)]


def image_ref(value: Any, where: str) -> ImageRef:
    """A path string, a URL, or an embedded image as HF datasets stores it: {"bytes": ..., "path": ...}."""
    if isinstance(value, str):
        return path_ref(value, where)
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        data, path = value.get("bytes"), value.get("path")
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where}.bytes must be binary data, got {json_type(data)}")
        if path is not None and not isinstance(path, str):
            raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where}.path must be a string, got {json_type(path)}")
        if data is None:
            if not path:
                raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where} has neither bytes nor a path")
            return path_ref(path, where + ".path")
        return ImageRef(path=path or None, data=bytes(data))
    raise RecordProblem(
        RejectReason.BAD_FIELD_TYPE,
        f"{where} must be a path string or an object with 'bytes'/'path', got {json_type(value)}",
    )


def path_ref(value: str, where: str) -> ImageRef:
    """A relative path, a file:// URL or a base64 data: URL. Remote URLs are refused: nothing is fetched."""
    if not value.strip():
        raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where} is an empty image path")
    lowered = value[:16].lower()
    if lowered.startswith("data:"):
        return ImageRef(path=None, data=_data_url_bytes(value, where))
    if lowered.startswith("file://"):
        return ImageRef(path=unquote(value[len("file://") :]))
    if lowered.startswith(("http://", "https://")):
        raise RecordProblem(
            RejectReason.IMAGE_UNSAFE_PATH,
            f"{where} is a remote URL ({value[:80]!r}); remote images are not fetched: download them and "
            "reference them relative to --image-root",
        )
    if _URL_SCHEME.match(value):
        raise RecordProblem(
            RejectReason.IMAGE_UNSAFE_PATH, f"{where} is a URL with an unsupported scheme ({value[:80]!r})"
        )
    return ImageRef(path=value)


def _data_url_bytes(url: str, where: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.lower().endswith(";base64"):
        raise RecordProblem(
            RejectReason.IMAGE_UNDECODABLE, f"{where} is a data: URL that is not base64 ('data:...;base64,...')"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RecordProblem(RejectReason.IMAGE_UNDECODABLE, f"{where} has invalid base64 data: {e}") from None
