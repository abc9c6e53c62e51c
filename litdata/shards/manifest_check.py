"""Checking manifest JSON field by field: the one error a malformed manifest raises (`ManifestError`, naming the
field) and the type checks every section uses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class ManifestError(ValueError):
    """The manifest cannot be read: `reason` names the field and what is wrong, `path` the file (when known)."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.reason, self.path = reason, path


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return is_int(v) or isinstance(v, float)


def checked(where: str, d: Any, spec: Mapping[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of `spec` from the JSON object `d`, each checked by its predicate; `optional` ones may be
    missing (None)."""
    if not isinstance(d, dict):
        raise ManifestError(f"{where} is {type(d).__name__}, expected an object")
    out = {}
    for key, ok in spec.items():
        if key not in d:
            if key in optional:
                out[key] = None
                continue
            raise ManifestError(f"{where}.{key} is missing")
        if not ok(d[key]):
            raise ManifestError(f"{where}.{key} is {d[key]!r:.80}, of the wrong type or out of range")
        out[key] = d[key]
    return out
