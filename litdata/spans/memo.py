"""What the mining pass found in each distinct user-turn segment, kept for the labeller of the second pass.

Pass 2 labels the turns that pass 1 mined (litdata/read/twopass.py even hands over the same objects), and a
user-turn segment's template labels follow from what mining already computed for it: its sentences, split by
the shared pipeline without a lexicon matcher, and the two shapes of each. Looking them up spares pass 2 the
folding, spaCy and shape work on segments that mining saw; a segment not here is labelled as before.

Bounded by the characters of the segments held. Entries are only added, never evicted, until the bound is
reached: pass 2 meets the records in pass 1's order, so the first segments are the useful ones. Each mining
run starts it afresh. Everything in an entry is a function of the segment text alone, so a stale or missing
entry changes no label.
"""

from __future__ import annotations

# (start, end, full shape, colon-prefix shape or None) of each sentence, offsets relative to the segment.
SegmentSentences = tuple[tuple[int, int, str, str | None], ...]

# About 6 bytes of memory per character of segment held (the key, the shapes, the tuples; tracemalloc on the
# benchmark's 3,000 text records: 2.8 MB for 0.48 M characters), so at most ~25 MB, the distinct user segments
# of some 25,000 such records: on larger inputs only their start is served, and peak memory stays near flat.
MAX_CHARS = 1 << 22


class SegmentMemo:
    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        self.max_chars = max_chars
        self._chars = 0
        self._entries: dict[str, SegmentSentences] = {}

    def clear(self) -> None:
        self._entries = {}
        self._chars = 0

    def add(self, entries: dict[str, SegmentSentences]) -> None:
        """Keep `entries` while the bound allows (in their order)."""
        if self._chars >= self.max_chars:
            return
        for seg, sents in entries.items():
            self._chars += len(seg)
            if self._chars > self.max_chars:
                return
            self._entries[seg] = sents

    def get(self, segment: str) -> SegmentSentences | None:
        return self._entries.get(segment)

    def __len__(self) -> int:
        return len(self._entries)


# Filled by mine_templates (shared pipeline, no matcher), read by TurnLabeler.
MINED = SegmentMemo()
