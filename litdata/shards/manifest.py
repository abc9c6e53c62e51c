"""`manifest.json`, read and written in one place (DESIGN.md, 'manifest.json').

The compiler builds a `Manifest` and writes `to_json()`; verify, inspect and every adapter read it with
`Manifest.read`, which checks the format name, every shard name (`check_shard_name`: a manifest never makes a
reader open a file outside its folder) and the type of every field it holds, so that a hostile or hand-edited
manifest is one `ManifestError` naming the file and the field, never a KeyError deep inside a reader.

Producers other than the compiler (test fixtures, older tools) may leave out the sections a compile adds
(counts, tokens, templates, ...); readers that need them read with `compiled=True`.

The top level and `config` are here; the other sections are in manifest_sections.py, and `ManifestError` with the
field checks in manifest_check.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litdata.shards.manifest_check import ManifestError, checked, is_int, is_number
from litdata.shards.manifest_sections import Counts, Packing, ShardEntry, TemplatesEntry, TokenTotals
from litdata.shards.reader import FormatProblem, open_regular
from litdata.shards.schema import FORMAT_NAME, MANIFEST, MAX_MANIFEST_BYTES

if TYPE_CHECKING:
    from litdata.images.tokens import ImageTokenRule


# Config fields readers use, with their types; the rest of `config` is carried as written (the compile's record).
def _or_none(ok: Any) -> Any:
    return lambda v: v is None or ok(v)


_CONFIG = {
    "seq_len": lambda v: is_int(v) and v > 0,
    "pad_id": _or_none(is_int),
    "image_token_id": _or_none(is_int),
    "image_tokens": _or_none(lambda v: is_int(v) and v >= 0),  # None: the rule gives each image its own count
    "image_token_rule": _or_none(lambda v: isinstance(v, str)),
    "mode": lambda v: isinstance(v, str),
    "template": lambda v: isinstance(v, str),
    "tokenizer": lambda v: isinstance(v, dict),
    "weights": lambda v: isinstance(v, dict) and all(isinstance(k, str) and is_number(w) for k, w in v.items()),
}
_COMPILED_CONFIG = ("seq_len", "image_token_id", "mode", "weights", "tokenizer")  # what every compile records


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A compile's manifest. `config` is the compile's settings as recorded (nested JSON); the fields readers
    use are typed properties below."""

    format_version: int
    config: Mapping[str, Any] = field(default_factory=dict)
    shards: tuple[ShardEntry, ...] = ()
    counts: Counts | None = None
    tokens: TokenTotals | None = None
    templates: TemplatesEntry | None = None
    packing: Packing | None = None
    inputs: tuple[Mapping[str, Any], ...] | None = None
    tool: Mapping[str, Any] | None = None
    format_name: str = FORMAT_NAME

    # ---- reading -----------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike, *, compiled: bool = False) -> Manifest:
        """The manifest at `path` (a file, or the folder holding `manifest.json`). `compiled`: also require
        every section and config field the compiler writes (verify and inspect compare them with the shards)."""
        p = Path(path)
        if p.is_dir():
            p = p / MANIFEST
        try:
            with open_regular(p, follow_symlinks=True) as f:
                data = f.read(MAX_MANIFEST_BYTES + 1)
        except FormatProblem as e:
            raise ManifestError(f"cannot read ({e.reason})", p) from None
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError(f"over {MAX_MANIFEST_BYTES} bytes, not a litdata manifest", p)
        try:
            d = json.loads(data)
        except ValueError as e:
            raise ManifestError(f"invalid JSON ({e})", p) from None
        try:
            return cls.from_json(d, compiled=compiled)
        except ManifestError as e:
            raise ManifestError(e.reason, p) from None

    @classmethod
    def from_json(cls, d: Any, *, compiled: bool = False) -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError(f"not a {FORMAT_NAME} manifest (a JSON {type(d).__name__}, expected an object)")
        fmt = d.get("format")
        if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
            raise ManifestError(f"not a {FORMAT_NAME} manifest (format {fmt!r:.80})")
        if not is_int(fmt.get("version")):
            raise ManifestError(f"format.version is {fmt.get('version')!r:.80}, expected an integer")
        sections = ("config", "shards", "counts", "tokens", "templates", "packing", "inputs", "tool")
        if compiled and (missing := [s for s in sections if s not in d]):
            raise ManifestError(f"{', '.join(missing)} missing (not a finished litdata compile)")
        # Only checked: the mapping is kept as written, the compile's record of its settings.
        checked("config", d.get("config", {}), _CONFIG,
                optional=tuple(k for k in _CONFIG if not compiled or k not in _COMPILED_CONFIG))
        shards = d.get("shards", [])
        if not isinstance(shards, list):
            raise ManifestError(f"shards is {type(shards).__name__}, expected a list")
        inputs, tool = d.get("inputs"), d.get("tool")
        if inputs is not None and not (isinstance(inputs, list) and all(isinstance(i, dict) for i in inputs)):
            raise ManifestError("inputs is not a list of objects")
        if tool is not None and not isinstance(tool, dict):
            raise ManifestError("tool is not an object")

        def section(key: str, kind: Any) -> Any:
            return kind.from_json(d[key]) if key in d else None

        entries = tuple(ShardEntry.from_json(s, f"shards[{i}]") for i, s in enumerate(shards))
        if len({s.name for s in entries}) != len(entries):  # a reader would read (and count) a shard twice
            raise ManifestError("shards lists a shard twice")
        return cls(format_version=fmt["version"], config=d.get("config", {}), shards=entries,
                   counts=section("counts", Counts), tokens=section("tokens", TokenTotals),
                   templates=section("templates", TemplatesEntry), packing=section("packing", Packing),
                   inputs=tuple(inputs) if inputs is not None else None, tool=tool)

    # ---- writing -----------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": {"name": self.format_name, "version": self.format_version},
                               "config": dict(self.config), "shards": [s.to_json() for s in self.shards]}
        for key in ("counts", "tokens", "templates", "packing"):
            if (value := getattr(self, key)) is not None:
                out[key] = value.to_json()
        if self.inputs is not None:
            out["inputs"] = [dict(i) for i in self.inputs]
        if self.tool is not None:
            out["tool"] = dict(self.tool)
        return out

    # ---- the config fields readers use ---------------------------------------------------------------
    @property
    def shard_names(self) -> list[str]:
        return [s.name for s in self.shards]

    @property
    def seq_len(self) -> int | None:
        return self.config.get("seq_len")

    @property
    def pad_id(self) -> int:
        return self.config.get("pad_id") or 0

    @property
    def image_token_id(self) -> int | None:
        return self.config.get("image_token_id")

    @property
    def image_tokens(self) -> int | None:
        """config.image_tokens: the count of every image under a fixed rule; None for rules without one."""
        return self.config.get("image_tokens")

    @property
    def image_token_rule(self) -> str | None:
        """The rule's spec (format 2), e.g. `fixed:576`, `tiles:...`, `processor:llava_next`; None in format 1."""
        return self.config.get("image_token_rule")

    @property
    def fixed_image_tokens(self) -> int | None:
        """The count every image takes when its sample stores none: format 1 (no rule recorded) has only
        config.image_tokens; format 2 stores each image's count in KEY.image_tokens.npy (None here)."""
        return self.image_tokens if self.image_token_rule is None else None

    def image_rule(self) -> ImageTokenRule:
        """The image token rule the shards were compiled with (format 1: the fixed config.image_tokens). Raises
        `litdata.images.tokens.RuleError` for a rule this litdata does not know."""
        from litdata.images.tokens import rule_from_config

        return rule_from_config(dict(self.config))

    @property
    def tokenizer(self) -> Mapping[str, Any]:
        return self.config.get("tokenizer") or {}

    @property
    def vocab_size(self) -> int | None:
        v = self.tokenizer.get("vocab_size")
        return v if is_int(v) else None

    @property
    def mode(self) -> str | None:
        return self.config.get("mode")

    @property
    def template(self) -> str | None:
        return self.config.get("template")

    @property
    def weights(self) -> dict[str, float]:
        """Class label -> weight, as compiled (`TokenClass.parse` each label for the enum)."""
        return dict(self.config.get("weights") or {})
