"""SegmentMemo: what the mining pass found per segment, bounded by the characters of the segments it holds."""

from __future__ import annotations

from litdata.spans.memo import SegmentMemo


def test_the_first_segments_are_kept_up_to_the_bound_and_clear_empties_it():
    memo = SegmentMemo(max_chars=10)
    one = ((0, 4, "abcd", None),)
    memo.add({"abcd": one, "efgh": one})
    memo.add({"ijkl": one, "m": one})  # "ijkl" would pass the bound: neither it nor anything later is kept
    assert (memo.get("abcd"), memo.get("efgh"), memo.get("ijkl"), memo.get("m")) == (one, one, None, None)
    assert len(memo) == 2
    memo.clear()
    assert len(memo) == 0 and memo.get("abcd") is None
    memo.add({"m": one})
    assert memo.get("m") == one
