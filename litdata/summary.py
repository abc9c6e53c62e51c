"""The compile summary printed at the end of `litdata compile` / `litdata demo`.

Table cells and titles are rich markup: everything that comes from the data or the command line (the output
path, template shapes such as `[INST] ... [/INST]`) goes through markup_safe.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from litdata.classes import TokenClass
from litdata.terminal_text import markup_safe


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_summary(result, out: Path, *, seconds: float, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    m = result.manifest
    counts, tokens, packing = m.counts, m.tokens, m.packing
    assert counts is not None and tokens is not None and packing is not None  # the compiler writes every section
    shard_bytes = sum(s.bytes or 0 for s in m.shards)

    head = Table(title=f"litdata compile -> {markup_safe(out)}", show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("records read", f"{counts.records_read:,}")
    head.add_row("documents written", f"{counts.documents_written:,}")
    head.add_row("rejected", f"{counts.rejected:,}  (see rejects.jsonl)" if counts.rejected else "0")
    for reason, n in counts.rejected_by_reason.items():
        head.add_row(f"  {markup_safe(reason)}", f"{n:,}")
    if counts.truncated:
        head.add_row("truncated", f"{counts.truncated:,}")
    if counts.harmful_spans:
        head.add_row("harmful spans", f"{counts.harmful_spans:,}  (see harmful_audit.jsonl)")
    head.add_row("images", f"{counts.images:,}")
    head.add_row("sequences", f"{counts.sequences:,} x {packing.seq_len}")
    head.add_row("packing efficiency", f"{packing.efficiency:.2%}")
    head.add_row("supervised tokens vit", f"{tokens.supervised_vit:,}")
    head.add_row("supervised tokens lit", f"{tokens.supervised_lit:,}"
                 + (f"  ({tokens.supervised_lit / tokens.supervised_vit:.2f}x vit)" if tokens.supervised_vit else ""))
    head.add_row("shards", f"{len(m.shards)}  ({_size(shard_bytes)})")
    head.add_row("time", f"{seconds:.1f} s  ({counts.records_read / max(seconds, 1e-9):,.0f} records/s)")
    console.print(head)

    by_class = Table(title="tokens by class", title_justify="left")
    for col in ("class", "tokens", "share", f"weight ({m.mode})"):
        by_class.add_column(col, justify="left" if col == "class" else "right")
    total = max(tokens.total, 1)
    for c in TokenClass:
        n = tokens.by_class[c.label]
        by_class.add_row(c.label, f"{n:,}", f"{n / total:.1%}", f"{m.weights[c.label]:g}")
    console.print(by_class)

    table = result.templates
    if table is not None and len(table.template_shapes()):
        top = Table(title="task templates (top)", title_justify="left")
        for col in ("shape", "records", "fraction"):
            top.add_column(col, justify="left" if col == "shape" else "right", overflow="fold")
        for row in table.top(5).iter_rows(named=True):
            top.add_row(markup_safe(row["shape"]), f"{row['count']:,}", f"{row['record_frac']:.1%}")
        console.print(top)
