"""Consecutive lists of a stream: the batches the encoder takes and the chunks mining counts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` as consecutive lists of `size` (the last one shorter), read as they are asked for."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
