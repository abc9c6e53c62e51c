"""The sections of `manifest.json` other than the top level and `config`: each shard's entry, the counts, the token
totals, the template table's entry and the packing figures, each checked when read (`from_json`) and written back
as read (`to_json`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from litdata.shards.manifest_check import ManifestError, checked, is_int, is_number
from litdata.shards.reader import FormatProblem, check_shard_name


def _count_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and is_int(n) for k, n in v.items())


def _jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON, dropping optional fields that are None (absent in the manifest read)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj) if getattr(obj, f.name) is not None}


@dataclass(frozen=True, kw_only=True)
class ShardEntry:
    """One shard as the manifest lists it. `documents` and `tokens` are None where another producer left them out."""

    name: str
    sha256: str | None = None
    bytes: int | None = None
    sequences: int | None = None
    documents: int | None = None
    tokens: int | None = None

    @classmethod
    def from_json(cls, d: Any, where: str) -> ShardEntry:
        if not isinstance(d, dict):
            raise ManifestError(f"{where} is {type(d).__name__}, expected an object")
        try:
            check_shard_name(d.get("name"))
        except FormatProblem as p:  # the message verify and the tests know: "shard name 'x': not a shard ..."
            raise ManifestError(f"shard name {p}") from None
        counted = {k: is_int for k in ("bytes", "sequences", "documents", "tokens")}
        return cls(**checked(where, d, {"name": lambda v: True, "sha256": lambda v: isinstance(v, str), **counted},
                             optional=("sha256", *counted)))

    def to_json(self) -> dict[str, Any]:
        return _jsonable(self)


@dataclass(frozen=True, kw_only=True)
class Counts:
    """Records in and out of a compile (`manifest.counts`)."""

    records_read: int
    documents_written: int
    rejected: int
    rejected_by_reason: Mapping[str, int]
    truncated: int
    images: int
    sequences: int
    harmful_spans: int

    @classmethod
    def from_json(cls, d: Any, where: str = "counts") -> Counts:
        return cls(**checked(where, d, {f.name: _count_map if f.name == "rejected_by_reason" else is_int
                                        for f in fields(cls)}))

    def to_json(self) -> dict[str, Any]:
        return {**_jsonable(self), "rejected_by_reason": dict(self.rejected_by_reason)}


@dataclass(frozen=True, kw_only=True)
class TokenTotals:
    """Token figures of the shards (`manifest.tokens`), which `litdata verify` recomputes."""

    by_class: Mapping[str, int]
    total: int
    expanded_total: int
    supervised_vit: int
    supervised_lit: int
    weight_sum: float

    @classmethod
    def from_json(cls, d: Any, where: str = "tokens") -> TokenTotals:
        spec = {f.name: is_int for f in fields(cls)}
        return cls(**checked(where, d, {**spec, "by_class": _count_map, "weight_sum": is_number}))

    def to_json(self) -> dict[str, Any]:
        return {**_jsonable(self), "by_class": dict(self.by_class)}


@dataclass(frozen=True, kw_only=True)
class TemplatesEntry:
    """Where the mined template table is (`manifest.templates`)."""

    file: str
    sha256: str | None
    count: int

    @classmethod
    def from_json(cls, d: Any, where: str = "templates") -> TemplatesEntry:
        return cls(**checked(where, d, {"file": lambda v: isinstance(v, str),
                                        "sha256": lambda v: v is None or isinstance(v, str), "count": is_int}))

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "count": self.count}


@dataclass(frozen=True, kw_only=True)
class Packing:
    """How full the sequences are (`manifest.packing`)."""

    seq_len: int
    sequences: int
    efficiency: float

    @classmethod
    def from_json(cls, d: Any, where: str = "packing") -> Packing:
        return cls(**checked(where, d, {"seq_len": is_int, "sequences": is_int, "efficiency": is_number}))

    def to_json(self) -> dict[str, Any]:
        return _jsonable(self)

