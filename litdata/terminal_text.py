"""Data on a terminal: control characters made visible, and rich markup taken literally.

Record ids, file names, template shapes and decoded text come from the input, so printing them raw lets an ESC
sequence recolour or rewrite the terminal (or a NUL truncate a log line), and printing them through rich's
markup parser lets `[/b]` in a path or `[INST] ... [/INST]` in a sentence raise a MarkupError after the work
is done.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_KEEP_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # keeps \t and \n


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\x00`, `\\n`), one line."""
    return _CONTROL.sub(_visible, str(text))


def visible_text(text: str) -> str:
    """Like visible(), but tabs and newlines stay: for multi-line document text."""
    return _KEEP_IN_TEXT.sub(_visible, text)


def markup_safe(text: object) -> str:
    """`text` for a place where rich reads markup (table cells, titles, console.print of a str)."""
    return escape(visible(text))
