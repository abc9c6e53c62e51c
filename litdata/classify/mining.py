"""Corpus-wide sentence statistics of the user turns, counted in chunks with polars.

Per chunk of records, the user-turn sentences become a polars frame (record, shape, example), made unique per
record and grouped by shape; chunk counts are merged into a running aggregate. Only one chunk of sentences
is ever held in Python objects; the aggregate holds one row per distinct shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import polars as pl

from litdata.classify.sentences import SentenceSplitter
from litdata.classify.settings import MiningSettings
from litdata.classify.shapes import shapes_of
from litdata.classify.table import COUNTS_SCHEMA, TemplateTable
from litdata.records.conversation import Conversation, Role

__all__ = ["MiningSettings", "ShapeCounter", "mine_templates"]

MAX_EXAMPLE_CHARS = 200


class ShapeCounter:
    """Running (shape -> distinct records, first example) aggregate.

    Chunk results wait in a list and are merged once they outgrow the aggregate, so the cost of merging stays
    proportional to the data instead of (chunks x distinct shapes).
    """

    def __init__(self) -> None:
        self._total = pl.DataFrame(schema=COUNTS_SCHEMA)
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0

    def add(self, rows: pl.DataFrame) -> None:
        """Add one chunk of (record, shape, example) rows; records must not reappear in later chunks."""
        chunk = (
            rows.unique(subset=["record", "shape"], keep="first", maintain_order=True)
            .group_by("shape", maintain_order=True)
            .agg(example=pl.col("example").first(), count=pl.len().cast(pl.Int64))
            .select(COUNTS_SCHEMA.keys())
        )
        self._pending.append(chunk)
        self._pending_rows += len(chunk)
        if self._pending_rows > max(len(self._total), 100_000):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        # Earlier rows come first, so `first` keeps the earliest example whatever the chunk size.
        self._total = (
            pl.concat([self._total, *self._pending])
            .group_by("shape", maintain_order=True)
            .agg(example=pl.col("example").first(), count=pl.col("count").sum())
            .select(COUNTS_SCHEMA.keys())
        )
        self._pending, self._pending_rows = [], 0

    def result(self) -> pl.DataFrame:
        self._merge()
        return self._total


def _chunks(items: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def chunk_rows(chunk: list[Conversation], first_record: int, splitter: SentenceSplitter) -> pl.DataFrame:
    """(record, shape, example) for every user-turn sentence of `chunk`, with its colon-prefix shape too."""
    owners: list[int] = []
    texts: list[str] = []
    for i, conv in enumerate(chunk):
        for turn in conv.turns:
            if turn.role is Role.USER:
                owners.append(first_record + i)
                texts.append(turn.text)
    records: list[int] = []
    shapes: list[str] = []
    examples: list[str] = []
    for owner, text, sentences in zip(owners, texts, splitter.split(texts)):
        for s in sentences:
            sentence = text[s.start : s.end]
            full, prefix = shapes_of(sentence)
            example = sentence[:MAX_EXAMPLE_CHARS]
            for shape in (full, prefix) if prefix is not None else (full,):
                records.append(owner)
                shapes.append(shape)
                examples.append(example)
    return pl.DataFrame(
        {"record": records, "shape": shapes, "example": examples},
        schema={"record": pl.Int64, "shape": pl.String, "example": pl.String},
    )


def mine_templates(
    conversations: Iterable[Conversation], settings: MiningSettings, *, progress: bool = False
) -> TemplateTable:
    """Count user-turn sentence shapes over `conversations` and decide which are task templates.

    With mining disabled the input is not read and the table holds only the user-listed shapes.
    """
    counter = ShapeCounter()
    n_records = 0
    if settings.enabled:
        splitter = SentenceSplitter()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(desc="mining templates", unit="rec", leave=False)
        for chunk in _chunks(conversations, settings.chunk_size):
            counter.add(chunk_rows(chunk, n_records, splitter))
            n_records += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
    return TemplateTable.build(counter.result(), n_records=n_records, settings=settings)
