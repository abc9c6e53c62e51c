"""`litdata` command line: one module per command under litdata/commands/.

Every failure ends here as one line on stderr naming the thing and the reason, never a traceback:
wrong options and unusable inputs exit 2 (commands raise UsageError, or an input/output error listed in
_INPUT_ERRORS), anything else exits 1. Set LITDATA_TRACEBACK=1 to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

COMMANDS = {
    "compile": "compile SOURCE... into packed, loss-weighted WebDataset shards",
    "demo": "compile the bundled demo dataset with the bundled tokenizer",
    "templates": "mine and print the task-template table only",
    "inspect": "show packed sequences with their spans coloured by class",
    "verify": "check every shard against the manifest and the format",
}


class UsageError(ValueError):
    """Wrong options: reported in one line, exit code 2."""


class CommandFailed(RuntimeError):
    """A command that ran to its end with nothing to show (`templates` on sources without a usable record):
    reported in one line, `litdata COMMAND: MESSAGE`, exit code 1."""


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


def _input_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this input/output cannot be used", raised below the commands: exit 2 like UsageError."""
    from litdata.output.folder import OutputError
    from litdata.read import SourceError
    from litdata.tokenize.tokens import TokenizerError

    return (UsageError, SourceError, OutputError, TokenizerError)


def _one_line(error: BaseException) -> str:
    from litdata.terminal_text import visible

    text = " ".join(str(error).split()) or error.__class__.__name__
    return visible(text)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("litdata: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, _input_errors()):
            print(f"litdata {args.command}: error: {_one_line(e)}", file=sys.stderr)
            return 2
        if isinstance(e, CommandFailed):
            print(f"litdata {args.command}: {_one_line(e)}", file=sys.stderr)
            return 1
        if isinstance(e, OSError) and e.filename is not None:  # a full disk, a file that vanished mid-run
            print(f"litdata {args.command}: error: {_one_line(e.strerror or e)}: {_one_line(e.filename)}",
                  file=sys.stderr)
            return 1
        if os.environ.get("LITDATA_TRACEBACK"):
            traceback.print_exc()
        # A malformed manifest, a broken model folder, a bug: still one line, naming the exception's type.
        print(f"litdata {args.command}: error: {e.__class__.__name__}: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
