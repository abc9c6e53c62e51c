"""`litdata verify DIR`"""

from __future__ import annotations

import argparse
from pathlib import Path

from litdata.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, metavar="DIR", help="a compile's output folder")
    p.add_argument("--max-problems", type=int, default=50, help="stop after this many problems")


def run(args: argparse.Namespace) -> int:
    from litdata.terminal_text import visible
    from litdata.verify.folder import verify

    if not args.dir.is_dir():
        raise UsageError(f"{args.dir}: no such folder")
    rep = verify(args.dir, max_problems=args.max_problems)
    for p in rep.problems:
        print(f"FAIL {visible(p)}")  # problems quote names from the manifest and the shards
    if rep.ok:
        print(f"OK {rep.shards} shards, {rep.sequences} sequences, {rep.documents} documents, {rep.tokens} tokens")
        return 0
    print(f"{len(rep.problems)} problem(s) in {visible(args.dir)}")
    return 1
