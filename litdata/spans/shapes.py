"""Sentence shapes: the normal form under which template sentences collapse into one row of the table.

A shape is lower-case with whitespace collapsed; numbers become `<num>` and coordinate lists or bracketed
boxes (`[0.12, 0.34, 0.56, 0.78]`, `(12, 40)`) become `<box>`, so that parametric templates such as
"Please provide a short description for this region: [0.1, 0.2, 0.3, 0.4]." count as one sentence.
The `<image>` placeholder is removed: it gets the image class as a token class, whatever the spans say.

Templates whose tail is free text ("... this sentence describes: a red circle on the left.") cannot collapse
that way; for them `prefix_shape` gives the part up to the colon followed by `<arg>`. Mining counts both
shapes, and only a *frequent* prefix becomes a template, so an ordinary question with a colon stays an
ordinary question.
"""

from __future__ import annotations

import re

from litdata.records.conversation import IMAGE_PLACEHOLDER

NUM = "<num>"
BOX = "<box>"
ARG = "<arg>"

_NUMBER = r"[-+]?\d+(?:[.,]\d+)*"
# Two or more numbers in brackets or parentheses: boxes, points, coordinate pairs. Inside a box a ',' is read
# only as a separator: with _NUMBER's decimal ',' as well, "(1,1,...,1" (unclosed) has exponentially many
# readings and the engine tries them all. Both read the same strings as boxes (a number with decimal commas is
# also a list of numbers), and a box ends at its first closing bracket, so the substitutions are the same.
# What is left is linear: every quantified piece is followed by a character it cannot match (a digit run by
# '.', ',' or a closer), so giving any of it back fails at once. (No possessive quantifiers: Python 3.10.)
_BOX_NUMBER = r"[-+]?\d+(?:\.\d+)*"
_BOX_RE = re.compile(rf"[\[(]\s*{_BOX_NUMBER}(?:\s*,\s*{_BOX_NUMBER})+\s*[\])]")
_NUM_RE = re.compile(rf"(?<![\w<]){_NUMBER}")
_DIGIT_RE = re.compile(r"\d")  # both patterns above need one: text without a digit skips them
_ASCII_DIGIT_RE = re.compile(r"[0-9]")
# Prefixes shorter than this ("question:", "options:", "reference ocr token:") are labels in front of the
# informative part, not templates; a collapsed "question: <arg>" would silence every such question.
MIN_PREFIX_WORDS = 4
# A tail made only of placeholders and punctuation is already constant in the full shape. Whitespace is part
# of [^\w<>]: listing \s as its own alternative made "- - - ... x" exponential (each space read two ways).
_CONSTANT_TAIL_RE = re.compile(rf"(?:[^\w<>]|{re.escape(NUM)}|{re.escape(BOX)})*")


def sentence_shape(text: str) -> str:
    """The normalised shape of one sentence (see the module docstring)."""
    s = text.replace(IMAGE_PLACEHOLDER, " ").lower()
    # In ASCII text the only digits are 0-9, and this class scans twice as fast as the Unicode \d.
    if (_ASCII_DIGIT_RE if s.isascii() else _DIGIT_RE).search(s) is not None:
        s = _BOX_RE.sub(BOX, s)
        s = _NUM_RE.sub(NUM, s)
    if s.isprintable() and "  " not in s and s[:1] != " " and s[-1:] != " ":
        # Already collapsed: every whitespace character but the space is unprintable (tests/spans/
        # test_mining_fast_paths.py checks), and the spaces are single and inside. Most sentences are.
        return s
    # Whitespace runs collapsed to one space, ends trimmed: str.split() and the pattern \s agree on every code
    # point (tests/spans/test_shapes_linear.py checks), and this is four times faster than a substitution.
    return " ".join(s.split())


def prefix_shape(shape: str) -> str | None:
    """`prefix: <arg>` for a shape with a fixed-looking prefix before its first colon, else None.

    None when there is no colon, the tail is empty or already constant (`...: <box>.`), or the prefix has
    fewer than MIN_PREFIX_WORDS words.
    """
    head, colon, tail = shape.partition(":")
    if not colon or not tail.strip() or _CONSTANT_TAIL_RE.fullmatch(tail):
        return None
    if len(head.split()) < MIN_PREFIX_WORDS:
        return None
    return f"{head.rstrip()}: {ARG}"


def shapes_of(text: str) -> tuple[str, str | None]:
    """Both shapes of a sentence: the full shape and its colon-prefix shape (or None)."""
    full = sentence_shape(text)
    return full, prefix_shape(full)


def matching_template(sentence: str, template_shapes: frozenset[str] | set[str]) -> str | None:
    """The template shape `sentence` falls under (its full shape first, then its prefix shape), or None."""
    return template_of(*shapes_of(sentence), template_shapes)


def template_of(full: str, prefix: str | None, template_shapes: frozenset[str] | set[str]) -> str | None:
    """The template shape a sentence with these shapes (`shapes_of`) falls under: its full shape first, then its
    prefix shape; or None."""
    if full in template_shapes:
        return full
    return prefix if prefix is not None and prefix in template_shapes else None
