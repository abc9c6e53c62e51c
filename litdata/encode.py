"""The per-record stage that runs in worker processes: images -> spans -> render -> tokenize -> token classes ->
weigh. Spans (template and harmful, litdata/spans/) label the text before rendering; token classes project those
labels onto the tokens after tokenizing.

Work is done a batch at a time so that spaCy and the tokenizer can batch in native code. An `Encoder` is built
once per process from a picklable `EncodeSpec`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litdata.classes import TokenClass, weight_table
from litdata.config import CompileConfig, HarmfulSettings, Overflow
from litdata.images.tokens import FixedRule, ImageTokenRule, RuleError
from litdata.records import AuditHit, Conversation, Document, RecordProblem, Reject, RejectReason
from litdata.records.document import ImageBlob
from litdata.render import Rendered, TemplateError, get_template
from litdata.tokenize.batch import TokenizeJob
from litdata.tokenize.tokens import cut_rows, load_tokenizer
from litdata.weigh import weigh_sequence


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
class _Batch:
    """A batch between `Encoder.begin` and `Encoder.finish`: `out` holds the rejects found so far."""

    items: Sequence[Conversation | Reject]
    out: list
    images: dict
    rendered: list
    job: TokenizeJob


@dataclass(frozen=True, kw_only=True, slots=True)
class _Images:
    """A record's verified images with each one's count under the --image-tokens rule."""

    blobs: tuple[ImageBlob, ...]
    counts: tuple[int, ...]
    tiles: tuple[int, ...]  # empty unless the rule tiles


_HEAP_FROZEN = False


def _freeze_heap_once() -> None:
    """Move what is alive once the encoder is built (torch, transformers, spaCy, the tokenizer: about 280k
    objects) out of the cyclic garbage collector's sight, once per process. Every full collection walked all of
    it, about 0.2 s each, two or three times per 3,000 records: 10-15% of a compile. Objects created later are
    collected as usual, and reference counting still frees everything; only a reference cycle among objects
    alive at this point would now stay (once per process, bounded by what was alive then)."""
    global _HEAP_FROZEN
    if not _HEAP_FROZEN:
        gc.freeze()
        _HEAP_FROZEN = True


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
        self.labeler.load()
        _freeze_heap_once()

    def encode_batch(self, items: Sequence[Conversation | Reject]) -> list[Document | Reject]:
        """One Document or Reject per item, in order; each carries the harmful spans found in it (`audit`)."""
        batch = self.begin(items)
        batch.job.run_native()
        return self.finish(batch)

    def encode_batches(self, batches: Iterable[Sequence[Conversation | Reject]]) -> Iterator[list[Document | Reject]]:
        """`encode_batch` of each batch, in order, with the tokenizer's native call of one batch running in a
        second thread while this one does the Python work of its neighbours (what the consumer does with the
        previous result included). Exactly one thread runs Python of this Encoder at a time: the other one only
        waits in the GIL-free native call, so the results are those of `encode_batch`."""
        with ThreadPoolExecutor(1, thread_name_prefix="litdata-tokenize") as native:
            pending: tuple[_Batch, Future] | None = None
            try:
                for items in batches:
                    batch = self.begin(items)
                    running = native.submit(batch.job.run_native)
                    if pending is not None:
                        yield self._finished(*pending)
                    pending = (batch, running)
                if pending is not None:
                    yield self._finished(*pending)
            finally:
                if pending is not None:
                    pending[1].cancel()

    def _finished(self, batch: _Batch, native: Future) -> list[Document | Reject]:
        native.result()  # a failed native call raises here, after the batches before it were yielded
        return self.finish(batch)

    def begin(self, items: Sequence[Conversation | Reject]) -> _Batch:
        """Images, span labels and rendering of a batch, up to its TokenizeJob (not yet run)."""
        out: list[Conversation | Document | Reject] = list(items)
        images: dict[int, _Images] = {}
        live: list[int] = []
        for i, item in enumerate(items):
            if isinstance(item, Conversation):
                try:
                    images[i] = self._counted(self._images(item))
                except RecordProblem as p:
                    out[i] = p.reject(item.provenance)
                else:
                    live.append(i)

        turns = [(t.role, t.text) for i in live for t in items[i].turns]
        flat = self.labeler.label(turns) if turns else []
        rendered: list[tuple[int, Rendered, tuple[AuditHit, ...]]] = []
        k = 0
        drop = self.spec.harmful.policy == "drop"
        for i in live:
            conv = items[i]
            labels = flat[k : k + len(conv.turns)]
            k += len(conv.turns)
            hits = self._audit(conv, labels, "dropped" if drop else "masked")
            try:
                rendered.append((i, self._render(conv, labels, hits, drop), hits))
            except RecordProblem as p:
                out[i] = p.reject(conv.provenance, audit=hits)
        job = TokenizeJob(self.tokenizer, [r for _, r, _ in rendered], self.tokinfo.image_token_id)
        return _Batch(items=items, out=out, images=images, rendered=rendered, job=job)

    def finish(self, batch: _Batch) -> list[Document | Reject]:
        """The batch's Documents from its TokenizeJob's result (its native call done)."""
        items, out, images = batch.items, batch.out, batch.images
        done = batch.job.result()
        if not done:
            return out  # type: ignore[return-value]
        # The weights and image-token counts of the whole batch in a few numpy calls: per record, the calls'
        # overhead was most of their cost (records are a few hundred tokens).
        ids_all, classes_all = np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])
        counts = np.fromiter((d[0].shape[0] for d in done), dtype=np.int64, count=len(done))
        ends = np.cumsum(counts)
        starts = ends - counts
        weights = cut_rows(weigh_sequence(classes_all, starts[counts > 0], self.table), counts)
        seen = np.concatenate(([0], np.cumsum(ids_all == self.tokinfo.image_token_id)))
        placeholders = (seen[ends] - seen[starts]).tolist()
        for (i, r, hits), (ids, classes), w, n in zip(batch.rendered, done, weights, placeholders):
            try:
                out[i] = self._document(items[i], images[i], ids, classes, w, n, r.trimmed, hits)
            except RecordProblem as p:
                out[i] = p.reject(items[i].provenance, audit=hits)
        return out  # type: ignore[return-value]

    def _render(self, conv: Conversation, labels, hits: tuple[AuditHit, ...], drop: bool) -> Rendered:
        """The record rendered with its span labels; RecordProblem when --harmful drop drops it or the chat
        template cannot render it."""
        if hits and drop:
            raise RecordProblem(RejectReason.HARMFUL, f"{len(hits)} harmful span(s), first in turn {hits[0].turn}: "
                                                      f"{hits[0].text[:80]!r}")
        try:
            return self.template.render(conv, [[(s.start, s.end, s.cls) for s in turn] for turn in labels])
        except TemplateError as e:
            raise RecordProblem(RejectReason.TEMPLATE_ERROR, str(e)) from None

    def _images(self, conv: Conversation) -> tuple[ImageBlob, ...]:
        if not conv.images:  # a text record: not even the import below, once per record
            return ()
        from litdata.read import resolve_image

        blobs = []
        for n, ref in enumerate(conv.images):
            try:
                blobs.append(resolve_image(ref, image_root=self.image_root, max_pixels=self.spec.max_pixels,
                                           max_bytes=self.spec.max_image_bytes))
            except RecordProblem as p:
                raise RecordProblem(p.reason, f"image {n}: {p.detail}") from None
        return tuple(blobs)

    def _counted(self, blobs: tuple[ImageBlob, ...]) -> _Images:
        """Each image's count under the --image-tokens rule, from the size its header gave (no pixel decode)."""
        counts, tiles = [], []
        for n, blob in enumerate(blobs):
            try:
                count = self.rule.count(blob.width, blob.height)
            except RuleError as e:
                raise RecordProblem(RejectReason.IMAGE_UNCOUNTABLE,
                                    f"image {n} ({blob.width}x{blob.height}): {self.rule.spec}: {e}") from None
            counts.append(count.tokens)
            tiles.append(count.tiles)
        return _Images(blobs=blobs, counts=tuple(counts), tiles=tuple(tiles) if self.rule.tiled else ())

    @staticmethod
    def _audit(conv: Conversation, labels, action: str) -> tuple[AuditHit, ...]:
        p = conv.provenance
        return tuple(
            AuditHit(file=p.source, index=p.index, id=p.id, turn=t, role=conv.turns[t].role.value,
                     text=conv.turns[t].text[s.start : s.end], matcher=s.matcher, score=s.score, action=action)
            for t, turn in enumerate(labels)
            for s in turn
            if s.cls is TokenClass.HARMFUL
        )

    def _document(self, conv: Conversation, images: _Images, ids: np.ndarray, classes: np.ndarray,
                  weights: np.ndarray, placeholders: int, trimmed: tuple[int, ...] = (),
                  audit: tuple[AuditHit, ...] = ()) -> Document:
        """`weights` are `weigh(classes)`, `placeholders` the image tokens among `ids` (finish counts both for the
        whole batch)."""
        spec = self.spec
        blobs, counts, tiles = images.blobs, images.counts, images.tiles
        if placeholders != len(blobs):
            raise RecordProblem(RejectReason.TEMPLATE_ERROR,
                                f"{placeholders} image tokens after tokenization for {len(blobs)} images")
        # Positions per token once expanded: each placeholder takes its image's count, in placeholder order.
        # Without images every token is one position (most records of a text workload).
        width = None
        expanded = int(ids.shape[0])
        is_image = ids == self.tokinfo.image_token_id if blobs or expanded > spec.seq_len else None
        if blobs:
            width = np.ones(ids.shape[0], dtype=np.int64)
            width[is_image] = counts
            expanded = int(width.sum())
        truncated_from = None
        if expanded > spec.seq_len:
            if spec.overflow == "drop":
                same = set(counts) or {self.rule.fixed or 0}  # the message as before for fixed counts
                shown = f"x {same.pop()}" if len(same) == 1 else f"of {list(counts)[:8]} tokens"
                raise RecordProblem(RejectReason.TOO_LONG,
                                    f"{expanded} tokens with images expanded > --seq-len {spec.seq_len} "
                                    f"({ids.shape[0]} text tokens, {len(blobs)} images {shown})")
            # Keep the longest prefix that fits; a placeholder is one token, so its image is kept whole or dropped
            # whole, whatever its count.
            keep = spec.seq_len if width is None else int(np.searchsorted(np.cumsum(width), spec.seq_len, side="right"))
            truncated_from = int(ids.shape[0])
            kept = int(is_image[:keep].sum())
            blobs, counts, tiles = blobs[:kept], counts[:kept], tiles[:kept]
            ids, classes, weights = ids[:keep], classes[:keep], weights[:keep]  # weigh(classes[:keep]) as well
        p = conv.provenance
        meta = {"id": p.id, "file": p.source, "index": p.index, "tokens": int(ids.shape[0]), "images": len(blobs)}
        if truncated_from is not None:
            meta["truncated_from"] = truncated_from
        if trimmed:  # the chat template trimmed these turns' whitespace (Llama 3, Gemma), as its reference does
            meta["trimmed_turns"] = list(trimmed)
        return Document(provenance=p, tokens=ids, classes=classes, weights=weights,
                        images=blobs, truncated_from=truncated_from, meta=meta, image_counts=counts,
                        image_tiles=tiles, audit=audit)
