"""`litdata` command line: one module per command under litdata/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "compile": "compile SOURCE... into packed, loss-weighted WebDataset shards",
    "demo": "compile the bundled demo dataset with the bundled tokenizer",
    "templates": "mine and print the task-template table only",
    "inspect": "show packed sequences with their spans coloured by class",
    "verify": "check every shard against the manifest and the format",
}


class UsageError(ValueError):
    """Wrong options: reported in one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from litdata import __version__

    parser = argparse.ArgumentParser(prog="litdata", description="LIT dataset compiler for Megatron-Core.")
    parser.add_argument("--version", action="version", version=f"litdata {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"litdata.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"litdata.commands.{name}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as e:
        print(f"litdata {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("litdata: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
