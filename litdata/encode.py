"""The per-record stage that runs in worker processes: images -> labels -> render -> tokenize -> classify -> weigh.

Work is done a batch at a time so that spaCy and the tokenizer can batch in native code. An `Encoder` is built
once per process from a picklable `EncodeSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from litdata.classes import TokenClass, weight_table
from litdata.config import CompileConfig, HarmfulSettings, Overflow
from litdata.images.tokens import FixedRule, ImageTokenRule
from litdata.records import Conversation, Document, Reject, RejectReason
from litdata.records.document import ImageBlob
from litdata.render import TemplateError, get_template
from litdata.tokenize.tokens import encode_rendered, load_tokenizer
from litdata.weigh import weigh


@dataclass(frozen=True, kw_only=True)
class EncodeSpec:
    """What a worker's Encoder needs, built from a CompileConfig (litdata/config.py, where the defaults live)."""

    tokenizer: str
    template: str
    weights: dict[TokenClass, float]  # already resolved for the mode and overrides
    seq_len: int
    image_tokens: int  # the fixed count, used when `image_rule` is None
    overflow: Overflow
    image_root: str | None
    max_pixels: int
    max_image_bytes: int = CompileConfig.max_image_bytes  # larger images: image_too_large
    template_shapes: frozenset[str] = frozenset()
    harmful: HarmfulSettings = field(default_factory=HarmfulSettings)
    image_rule: ImageTokenRule | None = None  # None: every image takes `image_tokens`

    def rule(self) -> ImageTokenRule:
        return self.image_rule if self.image_rule is not None else FixedRule(tokens=self.image_tokens)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Images:
    """A record's verified images with each one's count under the --image-tokens rule."""

    blobs: tuple[ImageBlob, ...]
    counts: tuple[int, ...]
    tiles: tuple[int, ...]  # empty unless the rule tiles


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditHit:
    """One harmful span, for harmful_audit.jsonl."""

    file: str
    index: int
    id: str | None
    turn: int
    role: str
    text: str
    matcher: str
    score: float | None
    action: str  # "masked" | "dropped"

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


class Encoder:
    def __init__(self, spec: EncodeSpec) -> None:
        from litdata.spans.labeler import TurnLabeler

        self.spec = spec
        self.tokenizer, self.tokinfo = load_tokenizer(spec.tokenizer)
        self.template = get_template(spec.template, self.tokenizer)
        self.table = weight_table(spec.weights)
        self.labeler = TurnLabeler(template_shapes=spec.template_shapes, harmful=spec.harmful)
        from litdata.fsio import is_url

        root = spec.image_root
        self.image_root = None if not root else root if is_url(root) else Path(root)  # Path() mangles s3://
        self.rule = spec.rule()

    def encode_batch(self, items: Sequence[Conversation | Reject]) -> tuple[list[Document | Reject], list[AuditHit]]:
        out: list[Document | Reject | None] = list(items)
        audit: list[AuditHit] = []
        images: dict[int, _Images] = {}
        live: list[int] = []
        for i, item in enumerate(items):
            if isinstance(item, Conversation):
                got = self._images(item)
                if not isinstance(got, Reject):
                    got = self._counted(item, got)
                if isinstance(got, Reject):
                    out[i] = got
                else:
                    images[i] = got
                    live.append(i)

        turns = [(t.role, t.text) for i in live for t in items[i].turns]
        flat = self.labeler.label(turns) if turns else []
        rendered: list[tuple[int, object]] = []
        k = 0
        drop = self.spec.harmful.policy == "drop"
        for i in live:
            conv = items[i]
            labels = flat[k : k + len(conv.turns)]
            k += len(conv.turns)
            hits = self._audit(conv, labels, "dropped" if drop else "masked")
            audit.extend(hits)
            if hits and drop:
                out[i] = Reject(provenance=conv.provenance, reason=RejectReason.HARMFUL,
                                message=f"{len(hits)} harmful span(s), first in turn {hits[0].turn}: {hits[0].text[:80]!r}")
                continue
            try:
                r = self.template.render(conv, [[(s.start, s.end, s.cls) for s in turn] for turn in labels])
            except TemplateError as e:
                out[i] = Reject(provenance=conv.provenance, reason=RejectReason.TEMPLATE_ERROR, message=str(e))
                continue
            rendered.append((i, r))

        encoded = encode_rendered(self.tokenizer, [r for _, r in rendered], self.tokinfo.image_token_id)
        for (i, r), (ids, classes) in zip(rendered, encoded):
            out[i] = self._document(items[i], images[i], ids, classes, r.trimmed)
        return out, audit  # type: ignore[return-value]

    def _images(self, conv: Conversation) -> tuple[ImageBlob, ...] | Reject:
        from litdata.read import resolve_image

        blobs = []
        for n, ref in enumerate(conv.images):
            got = resolve_image(ref, image_root=self.image_root, max_pixels=self.spec.max_pixels,
                                max_bytes=self.spec.max_image_bytes)
            if not isinstance(got, ImageBlob):
                reason, message = got
                return Reject(provenance=conv.provenance, reason=reason, message=f"image {n}: {message}")
            blobs.append(got)
        return tuple(blobs)

    def _counted(self, conv: Conversation, blobs: tuple[ImageBlob, ...]) -> _Images | Reject:
        """Each image's count under the --image-tokens rule, from the size its header gave (no pixel decode)."""
        from litdata.images.tokens import RuleError

        counts, tiles = [], []
        for n, blob in enumerate(blobs):
            try:
                count = self.rule.count(blob.width, blob.height)
            except RuleError as e:
                return Reject(provenance=conv.provenance, reason=RejectReason.IMAGE_UNCOUNTABLE,
                              message=f"image {n} ({blob.width}x{blob.height}): {self.rule.spec}: {e}")
            counts.append(count.tokens)
            tiles.append(count.tiles)
        return _Images(blobs=blobs, counts=tuple(counts), tiles=tuple(tiles) if self.rule.tiled else ())

    @staticmethod
    def _audit(conv: Conversation, labels, action: str) -> list[AuditHit]:
        p = conv.provenance
        return [
            AuditHit(file=p.source, index=p.index, id=p.id, turn=t, role=conv.turns[t].role.value,
                     text=conv.turns[t].text[s.start : s.end], matcher=s.matcher, score=s.score, action=action)
            for t, turn in enumerate(labels)
            for s in turn
            if s.cls is TokenClass.HARMFUL
        ]

    def _document(self, conv: Conversation, images: _Images, ids: np.ndarray,
                  classes: np.ndarray, trimmed: tuple[int, ...] = ()) -> Document | Reject:
        spec, image_id = self.spec, self.tokinfo.image_token_id
        is_image = ids == image_id
        blobs, counts, tiles = images.blobs, images.counts, images.tiles
        if int(is_image.sum()) != len(blobs):
            return Reject(provenance=conv.provenance, reason=RejectReason.TEMPLATE_ERROR,
                          message=f"{int(is_image.sum())} image tokens after tokenization for {len(blobs)} images")
        # Positions per token once expanded: each placeholder takes its image's count, in placeholder order.
        width = np.ones(ids.shape[0], dtype=np.int64)
        width[is_image] = counts
        expanded = int(width.sum())
        truncated_from = None
        if expanded > spec.seq_len:
            if spec.overflow == "drop":
                same = set(counts) or {self.rule.fixed or 0}  # the message as before for fixed counts
                shown = f"x {same.pop()}" if len(same) == 1 else f"of {list(counts)[:8]} tokens"
                return Reject(provenance=conv.provenance, reason=RejectReason.TOO_LONG,
                              message=f"{expanded} tokens with images expanded > --seq-len {spec.seq_len} "
                                      f"({ids.shape[0]} text tokens, {len(blobs)} images {shown})")
            # Keep the longest prefix that fits; a placeholder is one token, so its image is kept whole or dropped
            # whole, whatever its count.
            keep = int(np.searchsorted(np.cumsum(width), spec.seq_len, side="right"))
            truncated_from = int(ids.shape[0])
            kept = int(is_image[:keep].sum())
            blobs, counts, tiles = blobs[:kept], counts[:kept], tiles[:kept]
            ids, classes = ids[:keep], classes[:keep]
        p = conv.provenance
        meta = {"id": p.id, "file": p.source, "index": p.index, "tokens": int(ids.shape[0]), "images": len(blobs)}
        if truncated_from is not None:
            meta["truncated_from"] = truncated_from
        if trimmed:  # the chat template trimmed these turns' whitespace (Llama 3, Gemma), as its reference does
            meta["trimmed_turns"] = list(trimmed)
        return Document(provenance=p, tokens=ids, classes=classes, weights=weigh(classes, self.table),
                        images=blobs, truncated_from=truncated_from, meta=meta, image_counts=counts,
                        image_tiles=tiles)
