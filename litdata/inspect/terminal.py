"""`litdata inspect DIR`: packed sequences decoded span by span, coloured by class (rich).

Without colour (`--no-color`, NO_COLOR, or output that is not a terminal) every span is prefixed with its
class in brackets, e.g. `⟦instruction⟧What colour is the square?`, so the text stays readable in logs and tests.
Everything that comes from the data (ids, file and shard names, decoded text) is printed as Text, never as
markup, with its control characters escaped (see litdata/terminal_text.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.text import Text

from litdata.classes import TokenClass, weight_table
from litdata.inspect.palette import PALETTE, format_weight
from litdata.inspect.reader import CompiledFolder, PackedDocument, ShardSequence
from litdata.inspect.spans import Decoder, Span, document_spans
from litdata.terminal_text import visible, visible_text
from litdata.weigh import weigh


@dataclass(frozen=True, kw_only=True)
class TerminalOptions:
    sequences: int = 2
    shard: str | None = None
    document: str | None = None
    mode: str | None = None  # None: the weights stored in the shards
    tokenizer: str | Path | None = None


def plain(console: Console) -> bool:
    return console.no_color or console.color_system is None


def tag(cls: TokenClass, weight: float | None = None) -> str:
    w = "" if weight is None or weight in (0.0, 1.0) else f" ×{format_weight(weight)}"
    return f"⟦{cls.label}{w}⟧"


def span_text(span: Span, *, doc: PackedDocument, tags: bool) -> Text:
    body = doc.image_label(span.image) if span.image is not None else visible_text(span.text)
    if tags:
        return Text(tag(span.cls, span.weight) + body)
    style = PALETTE[span.cls].rich + (" underline" if span.weight > 0 else "")
    out = Text(body, style=style)
    if span.weight not in (0.0, 1.0):
        out.append(f"⁽×{format_weight(span.weight)}⁾", style="dim")
    return out


def legend(weights: dict[TokenClass, float], mode_label: str, *, tags: bool) -> Text:
    out = Text()
    note = "" if tags else "; underlined text gets loss"
    out.append(f"legend ({mode_label} weights{note}): ", style="bold")
    for c in TokenClass:
        w = format_weight(weights[c])
        if tags:
            out.append(f"⟦{c.label}⟧ w={w}  ")
        else:
            out.append(f"■ {c.label}", style=PALETTE[c].rich)
            out.append(f" w={w}  ", style="dim")
    return out


def _doc_header(doc: PackedDocument, supervised: int) -> Text:
    m = doc.meta
    parts = [f"document {doc.position + 1}/{doc.siblings}", f"id {visible(m.id)}",
             f"{visible(Path(m.file).name)} #{m.index}",
             f"{len(doc.tokens)} tokens", f"{supervised} with loss"]
    if m.images:
        parts.append(f"{m.images} image{'s' if m.images != 1 else ''}")
    if m.truncated_from is not None:
        parts.append(f"truncated from {m.truncated_from} tokens")
    return Text("── " + " · ".join(parts) + " ──", style="bold")


class TerminalView:
    def __init__(self, folder: CompiledFolder, console: Console, opts: TerminalOptions) -> None:
        self.folder, self.console, self.opts = folder, console, opts
        self.tags = plain(console)
        self.decoder = Decoder(folder.load_tokenizer(opts.tokenizer))
        self.weights = folder.weights(opts.mode)
        self.table = weight_table(self.weights) if opts.mode else None

    def document(self, doc: PackedDocument) -> None:
        w = weigh(doc.classes, self.table) if self.table is not None else None
        spans = document_spans(doc, self.decoder, image_token_id=self.folder.image_token_id, weights=w)
        supervised = int(np.count_nonzero(doc.weights if w is None else w))
        self.console.print(_doc_header(doc, supervised), soft_wrap=True)
        text = Text()
        for s in spans:
            text.append_text(span_text(s, doc=doc, tags=self.tags))
        # soft_wrap: no hard line breaks inside the decoded text (copy-paste and tests see it whole)
        self.console.print(text, soft_wrap=True)

    def sequence(self, seq: ShardSequence) -> None:
        n, expanded = len(seq.tokens), seq.expanded_length
        where = f"{visible(seq.shard)}/{visible(seq.key)}"
        self.console.print(Text(f"═══ {where} · {len(seq.metas)} documents · {n} tokens"
                                f" ({expanded} with images expanded, seq_len {self.folder.manifest.seq_len})"
                                " ═══",
                                style="bold reverse" if not self.tags else ""), soft_wrap=True)
        for doc in seq.documents(self.folder.image_token_id):
            self.document(doc)

    def header(self) -> None:
        manifest = self.folder.manifest
        mode = self.opts.mode or manifest.mode or "?"
        label = mode if self.opts.mode else f"{mode}, as compiled"
        template = visible(manifest.template)
        self.console.print(Text(f"litdata inspect {visible(self.folder.path)} · template {template} · "
                                f"seq_len {manifest.seq_len} · {self.folder.image_rule_label}",
                                style="bold"), soft_wrap=True)
        self.console.print(legend(self.weights, label, tags=self.tags), soft_wrap=True)

    def run(self) -> int:
        self.header()
        if self.opts.document is not None:
            doc = self.folder.find_document(self.opts.document, self.opts.shard)
            if doc is None:
                where = self.opts.shard or f"{len(self.folder.shard_names)} shard(s)"
                self.console.print(Text(f"no document with id {visible(repr(self.opts.document))} in {visible(where)}"))
                return 1
            self.console.print(Text(f"═══ {visible(doc.shard)}/{visible(doc.key)} ═══", style="bold"))
            self.document(doc)
            return 0
        for i, seq in enumerate(self.folder.sequences(self.opts.shard)):
            if i >= self.opts.sequences:
                break
            self.sequence(seq)
        return 0


def show(folder: CompiledFolder, opts: TerminalOptions, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    return TerminalView(folder, console, opts).run()

