"""`litdata inspect DIR [--html report.html]`"""

from __future__ import annotations

import argparse
from pathlib import Path

from litdata.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, metavar="DIR", help="a compile's output folder")
    p.add_argument("--sequences", type=int, default=2, metavar="N", help="packed sequences to print (default 2)")
    p.add_argument("--shard", metavar="NAME", help="only this shard, e.g. shard-000003.tar")
    p.add_argument("--document", metavar="ID", help="print the document with this source id")
    p.add_argument("--mode", choices=("lit", "vit"), help="show the weights this mode would give "
                   "(default: the weights stored in the shards)")
    p.add_argument("--no-color", action="store_true", help="plain text, each span tagged with its class")
    p.add_argument("--tokenizer", metavar="PATH", help="tokenizer folder, if the one in manifest.json moved")
    p.add_argument("--html", type=Path, metavar="FILE", help="write one self-contained HTML report instead")
    p.add_argument("--samples", type=int, default=50, metavar="N",
                   help="documents shown in the HTML report, spread over all shards (default 50)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from litdata.inspect.reader import CompiledFolder, InspectError
    from litdata.terminal_text import visible

    if args.sequences < 0 or args.samples < 0:
        raise UsageError("--sequences and --samples must be >= 0")
    try:
        folder = CompiledFolder.open(args.dir)
        if args.html is not None:
            from litdata.inspect.html import write_report

            rep = write_report(folder, args.html, samples=args.samples, mode=args.mode, tokenizer=args.tokenizer)
            print(f"wrote {visible(args.html)} ({rep.bytes / 1024:,.0f} KiB: {rep.documents} documents shown, "
                  f"{rep.sources} source file(s))")
            return 0
        from litdata.inspect.terminal import TerminalOptions, show

        opts = TerminalOptions(sequences=args.sequences, shard=args.shard, document=args.document, mode=args.mode,
                               tokenizer=args.tokenizer)
        return show(folder, opts, Console(highlight=False, no_color=True if args.no_color else None))
    except InspectError as e:
        raise UsageError(str(e)) from None
