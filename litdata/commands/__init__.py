"""One module per command, each with `add_arguments(parser)` and `run(args) -> int`."""


def choices_help(meanings: dict[str, str], default: str) -> str:
    """`a: what a does (default); b: ...`, the default marked from the config rather than written in the text."""
    return "; ".join(f"{name}: {what}{' (default)' if name == default else ''}" for name, what in meanings.items())
