"""`litdata inspect DIR --html report.html`: one self-contained page to audit what gets loss.

Sections: summary figures, class legend, tokens by class per source file and per mode, the template table,
rejects, harmful-span audit, and a browsable sample of documents with spans coloured by class (hover: class
and weight, per token while the sample is small enough). Every piece of record text is escaped.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.inspect.assets import JS, css
from litdata.inspect.palette import PALETTE, format_weight
from litdata.inspect.reader import CompiledFolder, PackedDocument
from litdata.inspect.spans import Decoder, Span, document_spans
from litdata.inspect.stats import CLASS_COLUMNS, scan
from litdata.shards.atomic import atomic_write
from litdata.shards.manifest import Manifest
from litdata.weigh import weigh

PER_TOKEN_BUDGET = 60_000  # sampled tokens up to which every token gets its own hover title
IMAGE_BYTES_MAX, IMAGE_BUDGET = 64 * 1024, 1_500_000  # inline thumbnails: per image, and for the page
_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}
SECTIONS = ("summary", "legend", "sources", "modes", "templates", "rejects", "harmful", "samples")


@dataclass(frozen=True, kw_only=True)
class Report:
    path: Path
    bytes: int
    documents: int
    sources: int


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(n: float) -> str:
    if isinstance(n, (int, np.integer)) or float(n).is_integer():
        return f"{int(n):,}"
    return f"{n:,.2f}"


def _table(head: list[str], rows: list[list[object]], numeric: set[int] = frozenset(),
           raw: set[int] = frozenset()) -> str:
    """`raw` columns hold HTML built here (already escaped); every other cell is escaped."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            text = v if i in raw else esc(_num(v) if isinstance(v, (int, float, np.number)) else v)
            cells.append(f'<td class="n">{text}</td>' if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _bar(counts: list[int], width: int = 220, height: int = 14) -> str:
    """A stacked bar of tokens by class, as inline SVG."""
    total, x, rects = max(sum(counts), 1), 0.0, []
    for c, n in zip(TokenClass, counts):
        w = width * n / total
        if w > 0:
            rects.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="{height}" fill="{PALETTE[c].css_fg}">'
                         f"<title>{c.label}: {n:,} ({n / total:.1%})</title></rect>")
        x += w
    return f'<svg width="{width}" height="{height}" role="img">{"".join(rects)}</svg>'


def _figure(key: str, value: object, label: str) -> str:
    shown = f"{value:.2%}" if key == "packing_efficiency" else _num(value)
    return f'<div class="fig" data-key="{esc(key)}"><b>{esc(shown)}</b><span>{esc(label)}</span></div>'


def summary_section(m: Manifest) -> str:
    c, t, packing = m.counts, m.tokens, m.packing
    assert c is not None and t is not None and packing is not None  # CompiledFolder reads with compiled=True
    figs = [("records_read", c.records_read, "records read"), ("documents_written", c.documents_written,
            "documents written"), ("rejected", c.rejected, "rejected"), ("sequences", c.sequences, "sequences"),
            ("packing_efficiency", packing.efficiency, "packing efficiency"),
            ("supervised_vit", t.supervised_vit, "supervised tokens, vit"),
            ("supervised_lit", t.supervised_lit, "supervised tokens, lit"), ("tokens", t.total, "tokens"),
            ("images", c.images, "images"), ("truncated", c.truncated, "truncated documents"),
            ("harmful_spans", c.harmful_spans, "harmful spans")]
    reasons = sorted(c.rejected_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    rej = _table(["reject reason", "records"], [[r, n] for r, n in reasons], numeric={1}) if reasons else ""
    return ('<section id="summary"><h2>Summary</h2><div class="figs">' + "".join(_figure(*f) for f in figs)
            + f"</div>{rej}</section>")


def legend_section(folder: CompiledFolder, shown: dict[TokenClass, float], shown_label: str) -> str:
    compiled = folder.weights()
    modes = {"vit": class_weights("vit"), "lit": class_weights("lit")}
    rows = []
    for c in TokenClass:
        sw = f'<span class="sw c-{c.label}" data-cls="{c.label}">{c.label}</span>'
        rows.append([sw, int(c), format_weight(modes["vit"][c]), format_weight(modes["lit"][c]),
                     format_weight(compiled[c]), format_weight(shown[c])])
    head = ["class", "id", "vit", "lit", f"compiled ({folder.manifest.mode})", f"shown ({shown_label})"]
    return ('<section id="legend" class="legend"><h2>Classes and weights</h2>'
            '<p class="meta">Underlined text gets loss in the weights shown. Click a class to highlight it.</p>'
            + _table(head, rows, numeric={1, 2, 3, 4, 5}, raw={0}) + "</section>")


def sources_section(by_source) -> str:
    head = ["source file", "documents", "images", *[c.label for c in TokenClass], "tokens", "supervised vit",
            "supervised lit", "classes"]
    rows = []
    for r in by_source.iter_rows(named=True):
        counts = [int(r[col]) for col in CLASS_COLUMNS]
        name = f'<span title="{esc(r["file"])}">{esc(Path(r["file"]).name)}</span>'
        rows.append([name, r["documents"], r["images"], *counts, r["tokens"], r["supervised_vit"],
                     r["supervised_lit"], _bar(counts)])
    totals = by_source.select(CLASS_COLUMNS + ["documents", "images", "tokens", "supervised_vit",
                                               "supervised_lit"]).sum().row(0, named=True)
    counts = [int(totals[col]) for col in CLASS_COLUMNS]
    rows.append(["all sources", totals["documents"], totals["images"], *counts, totals["tokens"],
                 totals["supervised_vit"], totals["supervised_lit"], _bar(counts)])
    n = len(head)
    return ('<section id="sources"><h2>Tokens by class, per source file</h2>'
            + _table(head, rows, numeric=set(range(1, n - 1)), raw={0, n - 1}) + "</section>")


def modes_section(folder: CompiledFolder) -> str:
    t = folder.manifest.tokens
    assert t is not None  # CompiledFolder reads with compiled=True
    total = max(t.total, 1)
    rows = []
    for mode, sup in (("vit", t.supervised_vit), ("lit", t.supervised_lit)):
        w = class_weights(mode)
        rows.append([mode, *[format_weight(w[c]) for c in TokenClass], sup, f"{sup / total:.1%}"])
    compiled = folder.weights()
    ws = float(t.weight_sum)
    rows.append([f"as compiled ({folder.manifest.mode})", *[format_weight(compiled[c]) for c in TokenClass],
                 ws, f"{ws / total:.1%}"])
    head = ["mode", *[c.label for c in TokenClass], "supervised tokens (Σ weight)", "share of tokens"]
    return ('<section id="modes"><h2>Tokens with loss, per mode</h2>'
            + _table(head, rows, numeric=set(range(1, len(head)))) + "</section>")


def templates_section(folder: CompiledFolder, top: int = 30) -> str:
    import polars as pl

    df = folder.templates()
    if df is None:
        return '<section id="templates"><h2>Task templates</h2><p>No templates.parquet in this folder.</p></section>'
    n_tpl = df.filter(pl.col("decision") == "template").height
    shown = df.sort([pl.col("decision") != "template", pl.col("count")], descending=[False, True]).head(top)
    rows = [[r["shape"], r["example"], r["count"], f"{r['record_frac']:.2%}", r["decision"], r["why"]]
            for r in shown.iter_rows(named=True)]
    return (f'<section id="templates"><h2>Task templates</h2><p class="meta">{df.height:,} sentence shapes, '
            f"{n_tpl:,} marked as templates; top {len(rows)} shown.</p>"
            + _table(["shape", "example", "records", "record fraction", "decision", "why"], rows, numeric={2, 3})
            + "</section>")


def _rows_section(sid: str, title: str, rows: list[dict], total: int, empty: str) -> str:
    if not rows:
        return f'<section id="{sid}"><h2>{esc(title)}</h2><p>{esc(empty)}</p></section>'
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [["" if r.get(k) is None else r[k] if isinstance(r[k], (str, int, float)) else str(r[k]) for k in keys]
             for r in rows]
    return (f'<section id="{sid}"><h2>{esc(title)}</h2><p class="meta">first {len(rows)} of {total:,}</p>'
            + _table(keys, cells) + "</section>")


def _image(span: Span, doc: PackedDocument, budget: list[int]) -> str:
    label = doc.image_label(span.image)
    thumb = ""
    if span.image is not None and span.image <= len(doc.images):
        name, data = doc.images[span.image - 1]
        mime = _MIME.get(name.rsplit(".", 1)[-1].lower())
        if mime and len(data) <= IMAGE_BYTES_MAX and budget[0] >= len(data):
            budget[0] -= len(data)
            thumb = f'<img alt="{esc(name)}" src="data:{mime};base64,{base64.b64encode(data).decode()}">'
    return f'<span class="c-image img" title="image · weight {format_weight(span.weight)}">{thumb}{esc(label)}</span>'


def span_html(span: Span, *, doc: PackedDocument, budget: list[int], ids: np.ndarray) -> str:
    if span.image is not None:
        return _image(span, doc, budget)
    tip = f"{span.cls.label} · weight {format_weight(span.weight)}"
    cls = f"c-{span.cls.label}" + (" sup" if span.weight > 0 else "")
    if span.pieces is not None:
        inner = "".join(f'<span title="{tip} · token {int(i)}">{esc(p)}</span>'
                        for p, i in zip(span.pieces, ids[span.start:span.stop]))
    else:
        inner = esc(span.text)
    mark = "" if span.weight in (0.0, 1.0) else f'<span class="wt">×{format_weight(span.weight)}</span>'
    return f'<span class="{cls}" title="{tip}">{inner}</span>{mark}'


def samples_section(folder: CompiledFolder, docs: list[PackedDocument], decoder: Decoder, table: np.ndarray | None,
                    files: list[str]) -> str:
    per_token = sum(len(d.tokens) for d in docs) <= PER_TOKEN_BUDGET
    budget = [IMAGE_BUDGET]
    arts = []
    for d in docs:
        w = weigh(d.classes, table) if table is not None else d.weights
        spans = document_spans(d, decoder, image_token_id=folder.image_token_id, weights=w, per_token=per_token)
        body = "".join(span_html(s, doc=d, budget=budget, ids=d.tokens) for s in spans)
        m = d.meta
        extra = f" · truncated from {m.truncated_from} tokens" if m.truncated_from is not None else ""
        arts.append(f'<article class="doc" data-file="{esc(m.file)}" data-id="{esc(m.id)}"><header><b>{esc(m.id)}</b>'
                    f" · {esc(Path(m.file).name)} #{m.index} · {esc(d.shard)}/{esc(d.key)} document {d.position + 1}"
                    f"/{d.siblings} · {len(d.tokens):,} tokens · {int(np.count_nonzero(w)):,} with loss · "
                    f"{m.images} image(s){esc(extra)}</header><div class=\"text\">{body}</div></article>")
    options = "".join(f'<option value="{esc(f)}">{esc(Path(f).name)}</option>' for f in files)
    hl = "".join(f'<option value="{c.label}">{c.label}</option>' for c in TokenClass)
    controls = (f'<div class="controls"><input id="q" type="search" placeholder="search id or text">'
                f'<select id="src"><option value="">all sources</option>{options}</select>'
                f'<select id="hl"><option value="">highlight: none</option>{hl}</select><span id="shown"></span></div>')
    return (f'<section id="samples"><h2>Sample documents</h2><p class="meta">{len(docs)} documents spread evenly '
            f"over all shards.</p>{controls}{''.join(arts)}</section>")


def build_page(folder: CompiledFolder, *, samples: int = 50, mode: str | None = None,
               tokenizer: str | Path | None = None) -> tuple[str, int, int]:
    """The page's HTML, the number of documents shown and the number of source files."""
    decoder = Decoder(folder.load_tokenizer(tokenizer))
    result = scan(folder, samples=samples)
    m = folder.manifest
    shown = folder.weights(mode)
    shown_label = mode or f"{m.mode}, as compiled"
    files = result.by_source["file"].to_list()
    tool = m.tool or {}
    inputs = ", ".join(f"{Path(i['path']).name} ({str(i.get('sha256', ''))[:12]})" for i in m.inputs or ())
    head = (f"<h1>litdata inspect: {esc(folder.path.name)}</h1><p class=\"meta\">{esc(folder.path.resolve())} · "
            f"{esc(tool.get('name', 'litdata'))} {esc(tool.get('version', ''))} · mode {esc(m.mode)} · "
            f"template {esc(m.template)} · tokenizer {esc(m.tokenizer.get('name'))} · "
            f"seq_len {esc(m.seq_len)} · {esc(folder.image_rule_label)} · "
            f"inputs: {esc(inputs)}</p>")
    counts = m.counts
    assert counts is not None  # CompiledFolder reads with compiled=True
    body = "".join([
        head, summary_section(m), legend_section(folder, shown, shown_label), sources_section(result.by_source),
        modes_section(folder), templates_section(folder),
        _rows_section("rejects", "Rejected records", folder.jsonl("rejects.jsonl", 20), counts.rejected,
                      "No record was rejected."),
        _rows_section("harmful", "Harmful spans (audit)", folder.jsonl("harmful_audit.jsonl", 20),
                      counts.harmful_spans, "No harmful span was found."),
        samples_section(folder, result.samples, decoder, weight_table(shown) if mode else None, files),
    ])
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>litdata inspect: '
            f"{esc(folder.path.name)}</title><style>{css()}</style></head><body><main>{body}</main>"
            f"<script>{JS}</script></body></html>")
    return page, len(result.samples), len(files)


def write_report(folder: CompiledFolder, out: str | Path, *, samples: int = 50, mode: str | None = None,
                 tokenizer: str | Path | None = None) -> Report:
    out = Path(out)
    page, n_docs, n_files = build_page(folder, samples=samples, mode=mode, tokenizer=tokenizer)
    data = page.encode("utf-8")
    atomic_write(out, data)
    return Report(path=out, bytes=len(data), documents=n_docs, sources=n_files)
