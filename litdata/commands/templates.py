"""`litdata templates SOURCE...`: mine the task-template table of the sources and print it."""

from __future__ import annotations

import argparse
import sys

from litdata.classify.options import add_mining_arguments, mining_settings_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="LLaVA JSON/JSONL, ShareGPT, messages or Parquet")
    parser.add_argument("--out", metavar="FILE", help="write the full table to this Parquet file")
    parser.add_argument("--top", metavar="N", type=int, default=20, help="rows to print (default 20)")
    add_mining_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from litdata.classify.mining import mine_templates
    from litdata.read import read_sources  # lazy: the reader is heavier than option parsing
    from litdata.records import Conversation, Reject

    err = Console(stderr=True)
    try:
        settings = mining_settings_from_args(args)
    except ValueError as e:
        err.print(f"litdata templates: error: {e}", markup=False, highlight=False)
        return 2
    if args.top < 0:
        err.print("litdata templates: error: --top must be >= 0", markup=False, highlight=False)
        return 2

    rejected = 0

    def conversations():
        nonlocal rejected
        for item in read_sources(args.sources):
            if isinstance(item, Reject):
                rejected += 1
                err.print(
                    f"rejected {item.provenance.describe()}: {item.reason.value}: {item.message}",
                    markup=False,
                    highlight=False,
                )
            elif isinstance(item, Conversation):
                yield item

    table = mine_templates(conversations(), settings, progress=sys.stderr.isatty())
    view = Table(title=f"task templates ({table.n_records} records, {rejected} rejected)")
    for col in ("count", "record_frac", "decision", "shape", "why"):
        view.add_column(col, justify="right" if col in ("count", "record_frac") else "left")
    for row in table.top(args.top).iter_rows(named=True):
        # Text(...) so that brackets in shapes are printed, not read as rich markup.
        view.add_row(
            str(row["count"]), f"{row['record_frac']:.4f}", row["decision"], Text(row["shape"]), Text(row["why"])
        )
    # Piped output is for grep and files: wide enough that shapes stay on one line.
    Console(width=None if sys.stdout.isatty() else 240).print(view)
    print(f"{len(table.template_shapes())} template shapes out of {len(table.frame)} listed shapes")
    if args.out:
        table.write_parquet(args.out)
        print(f"wrote {args.out} (sha256 {table.sha256()})")
    if table.n_records == 0 and settings.enabled:
        err.print("litdata templates: no usable records", markup=False, highlight=False)
        return 1
    return 0
