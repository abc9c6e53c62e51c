"""Best-fit-decreasing bin packing of documents into sequences of at most `seq_len` expanded tokens.

Lengths are counted with every image placeholder expanded to `image_tokens` positions, since that is what the
model sees. Documents arrive as a stream; they are packed in windows of `window` documents so memory stays
bounded, and the `carry` emptiest bins of a window stay open for the next one, which keeps efficiency close to
that of packing everything at once. The output depends only on the input order, the options and the seed.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from litdata.records import Document, Reject


@dataclass(kw_only=True, slots=True)
class Bin:
    serial: int  # creation order: a stable tie-breaker
    free: int
    docs: list[Document] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackedSequence:
    docs: tuple[Document, ...]
    length: int  # expanded length


@dataclass(frozen=True, kw_only=True)
class PackSettings:
    seq_len: int
    image_tokens: int
    window: int = 8192
    carry: int = 256
    seed: int = 0


class BestFitPacker:
    def __init__(self, settings: PackSettings) -> None:
        self.s = settings
        self._open: list[Bin] = []
        self._serial = 0
        self._flushes = 0

    def _pack_window(self, docs: list[Document]) -> list[Bin]:
        s = self.s
        bins = self._open
        # Sorted free capacities for best fit: (free, serial) keys, so ties break by age deterministically.
        keys = sorted((b.free, b.serial) for b in bins)
        by_serial = {b.serial: b for b in bins}
        order = sorted(range(len(docs)), key=lambda i: -docs[i].expanded_length(s.image_tokens))
        for i in order:
            doc = docs[i]
            need = doc.expanded_length(s.image_tokens)
            j = bisect.bisect_left(keys, (need, -1))
            if j < len(keys):
                free, serial = keys.pop(j)
                b = by_serial[serial]
            else:
                b = Bin(serial=self._serial, free=s.seq_len)
                self._serial += 1
                by_serial[b.serial] = b
            b.docs.append(doc)
            b.free -= need
            bisect.insort(keys, (b.free, b.serial))
        return sorted(by_serial.values(), key=lambda b: b.serial)

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

    def run(self, items: Iterable[Document | Reject]) -> Iterator[PackedSequence | Reject]:
        """Documents in, packed sequences out; rejects pass through untouched, in order."""
        window: list[Document] = []
        for item in items:
            if isinstance(item, Reject):
                yield item
                continue
            if item.expanded_length(self.s.image_tokens) > self.s.seq_len:
                raise ValueError(f"{item.provenance.describe()}: document longer than seq_len reached the packer")
            window.append(item)
            if len(window) >= self.s.window:
                yield from self.flush(window, final=False)
                window = []
        yield from self.flush(window, final=True)
