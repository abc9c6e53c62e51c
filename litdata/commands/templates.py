"""`litdata templates SOURCE...`: mine the task-template table of the sources and print it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litdata.commands.span_options import add_mining_arguments, mining_settings_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="LLaVA JSON/JSONL, ShareGPT, messages or Parquet")
    parser.add_argument("--out", metavar="FILE", help="write the full table to this Parquet file")
    parser.add_argument("--top", metavar="N", type=int, default=20, help="rows to print (default 20)")
    add_mining_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from litdata.cli import CommandFailed, UsageError
    from litdata.read import read_sources, source_format  # lazy: the reader is heavier than option parsing
    from litdata.records import Conversation, Reject
    from litdata.spans.mining import mine_templates
    from litdata.terminal_text import visible

    # Errors are raised, like every command's: litdata/cli.py prints them in one line (UsageError: exit 2).
    try:
        settings = mining_settings_from_args(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.top < 0:
        raise UsageError("--top must be >= 0")
    if args.out and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: is a folder; name the Parquet file to write")
    for source in args.sources:
        source_format(source)  # a missing, empty, FIFO, folder or unsupported source: SourceError, before mining

    err = Console(stderr=True)
    rejected = 0

    def conversations():
        nonlocal rejected
        for item in read_sources(args.sources):
            if isinstance(item, Reject):
                rejected += 1
                err.print(
                    visible(f"rejected {item.provenance.describe()}: {item.reason.value}: {item.message}"),
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
        # Text(...) so that brackets in shapes are printed, not read as rich markup; visible() for control chars.
        view.add_row(
            str(row["count"]), f"{row['record_frac']:.4f}", row["decision"], Text(visible(row["shape"])),
            Text(visible(row["why"])),
        )
    # Piped output is for grep and files: wide enough that shapes stay on one line.
    Console(width=None if sys.stdout.isatty() else 240).print(view)
    print(f"{len(table.template_shapes())} template shapes out of {len(table.frame)} listed shapes")
    if args.out:
        _write_table(table, args.out)
        print(f"wrote {visible(args.out)} (sha256 {table.sha256()})")
    if table.n_records == 0 and settings.enabled:
        raise CommandFailed("no usable records")
    return 0


def _write_table(table, out: str) -> None:
    """Write through a temporary file, so that a failed write leaves neither a partial table nor the temporary."""
    from litdata.cli import UsageError
    from litdata.shards.atomic import atomic_file

    try:
        with atomic_file(out) as tmp:
            table.write_parquet(tmp)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write: {e.strerror or e}") from None
