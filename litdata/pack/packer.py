"""Bin packing of documents into sequences of at most `seq_len` expanded tokens.

Lengths are counted with every image placeholder expanded to its image's count of positions (the --image-tokens
rule's, carried by each document; `image_tokens` for documents made without one), since that is what the model
sees. Documents arrive as a stream and are packed in windows of `window` documents (8192 by default), so
memory stays bounded. Three algorithms:
- `fill` (default): subset-sum fill (litdata/pack/binpack.py); up to `carry` documents of a window that fill leaves
  over wait for the next one, where they fill gaps;
- `best-fit`: best-fit decreasing; the `carry` emptiest bins of a window stay open for the next one. Faster,
  about 3 points less efficient on LLaVA-shaped data at 4096;
- `lp`: whole copies of the patterns of the cutting-stock LP's optimum (litdata/pack/cutting_stock.py), then fill for
  what is left, up to `carry` documents waiting as with fill. Within a few sequences of the proven bound on
  LLaVA-shaped data (99.3% at 4096 against fill's 97.9%; benchmarks/README.md, section 2); needs scipy, and
  takes about a second per window once warm, more for the first window or many distinct lengths.
The output depends only on the input order, the options and the seed (for `lp`, also on the scipy/HiGHS
version, which could pick another of several optimal LP solutions).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from litdata.config import PackSettings
from litdata.pack.binpack import best_fit_decreasing, fill_bins, lp_bins
from litdata.records import Document


@dataclass(kw_only=True, slots=True)
class Bin:
    serial: int  # creation order: a stable tie-breaker
    free: int
    docs: list[Document] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackedSequence:
    docs: tuple[Document, ...]
    length: int  # expanded length


class BestFitPacker:
    """Best-fit decreasing per window; the emptiest bins stay open for the next window."""

    def __init__(self, settings: PackSettings) -> None:
        self.s = settings
        self._open: list[Bin] = []
        self._serial = 0
        self._flushes = 0

    def _pack_window(self, docs: list[Document]) -> list[Bin]:
        lengths = [d.expanded_length(self.s.image_tokens) for d in docs]
        assigned = best_fit_decreasing(lengths, self.s.seq_len, free=[b.free for b in self._open])
        bins = list(self._open)
        for b, idx in zip(bins, assigned):
            b.docs.extend(docs[i] for i in idx)
            b.free -= sum(lengths[i] for i in idx)
        for idx in assigned[len(bins) :]:
            bins.append(Bin(serial=self._serial, free=self.s.seq_len - sum(lengths[i] for i in idx),
                            docs=[docs[i] for i in idx]))
            self._serial += 1
        return bins

    def _emit(self, bins: list[Bin]) -> list[PackedSequence]:
        rng = random.Random(f"{self.s.seed}:{self._flushes}")
        self._flushes += 1
        rng.shuffle(bins)  # so that shards do not hold all the long sequences first
        return [PackedSequence(docs=tuple(b.docs), length=self.s.seq_len - b.free) for b in bins]

    def flush(self, docs: list[Document], final: bool) -> list[PackedSequence]:
        bins = self._pack_window(docs)
        if final:
            self._open = []
            return self._emit(bins)
        # Keep the emptiest bins open for the next window; emit the rest.
        by_free = sorted(bins, key=lambda b: (-b.free, b.serial))
        keep = {b.serial for b in by_free[: self.s.carry] if b.free > 0}
        self._open = [b for b in bins if b.serial in keep]
        return self._emit([b for b in bins if b.serial not in keep])

    def run(self, docs: Iterable[Document]) -> Iterator[PackedSequence]:
        """Documents in, packed sequences out, a window at a time."""
        window: list[Document] = []
        for doc in docs:
            if doc.expanded_length(self.s.image_tokens) > self.s.seq_len:
                raise ValueError(f"{doc.provenance.describe()}: document longer than seq_len reached the packer")
            window.append(doc)
            if len(window) >= self.s.window:
                yield from self.flush(window, final=False)
                window = []
        yield from self.flush(window, final=True)


class FillPacker(BestFitPacker):
    """Subset-sum fill per window, or best-fit decreasing over the same documents where that needs fewer
    sequences (it does when short documents abound: fill spends them early); the documents fill leaves over
    (the shortest) wait for the next window."""

    def __init__(self, settings: PackSettings) -> None:
        super().__init__(settings)
        self._waiting: list[Document] = []

    def flush(self, docs: list[Document], final: bool) -> list[PackedSequence]:
        docs = self._waiting + docs
        lengths = [d.expanded_length(self.s.image_tokens) for d in docs]
        bins, rest = self._bins(lengths, keep=0 if final else self.s.carry)
        placed = sorted(i for b in bins for i in b)
        best = best_fit_decreasing([lengths[i] for i in placed], self.s.seq_len)
        if len(best) < len(bins):
            bins = [[placed[j] for j in b] for b in best]
        self._waiting = [docs[i] for i in rest]
        packed = [Bin(serial=0, free=self.s.seq_len - sum(lengths[i] for i in b), docs=[docs[i] for i in b])
                  for b in bins]
        return self._emit(packed)

    def _bins(self, lengths: list[int], keep: int) -> tuple[list[list[int]], list[int]]:
        return fill_bins(lengths, self.s.seq_len, keep=keep)


class LPPacker(FillPacker):
    """FillPacker with the cutting-stock LP's plan (`lp_bins`) in place of subset-sum fill. Each window's LP starts
    from the previous window's sequences: the documents come from one distribution, so those are nearly the
    optimal patterns again, and column generation then takes a few rounds instead of a hundred or more."""

    def __init__(self, settings: PackSettings) -> None:
        super().__init__(settings)
        self._previous: list[tuple[int, ...]] = []  # the last window's sequences, as lengths

    def _bins(self, lengths: list[int], keep: int) -> tuple[list[list[int]], list[int]]:
        bins, rest = lp_bins(lengths, self.s.seq_len, keep=keep, initial=self._previous)
        self._previous = sorted({tuple(sorted(lengths[i] for i in b)) for b in bins})  # sorted: no set order leaks
        return bins, rest


def make_packer(settings: PackSettings) -> BestFitPacker:
    return {"fill": FillPacker, "best-fit": BestFitPacker, "lp": LPPacker}[settings.algorithm](settings)
