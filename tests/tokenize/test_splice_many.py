"""_splice_batch splices every text of a batch that has images at once (_splice_many); each text must get what
LLaVA's `tokenizer_image_token` gives it alone, written out here chunk by chunk as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from litdata.records.conversation import IMAGE_PLACEHOLDER
from litdata.tokenize.batch import _splice_batch

IMAGE_ID, BOS = 7, 1
TAG = len(IMAGE_PLACEHOLDER)


def tokenizer_image_token(cuts, parts, bos_id, prepend):
    """One text from its chunks' (ids, offsets): BOS kept once when the first chunk starts with it (and the
    first token of every chunk dropped), the image id between chunks with its tag's span, offsets in text
    coordinates. With `prepend`, BOS is put in front and nothing dropped."""
    first = parts[0][0]
    drop = 1 if not prepend and len(first) and bos_id is not None and first[0] == bos_id else 0
    ids = [bos_id] if (prepend or drop) else []
    offsets = [(0, 0)] if (prepend or drop) else []
    for k, ((a, _), (chunk_ids, chunk_offsets)) in enumerate(zip(cuts, parts)):
        if k:
            ids.append(IMAGE_ID)
            offsets.append((a - TAG, a))
        ids += list(chunk_ids[drop:])
        offsets += [(s + a, e + a) for s, e in chunk_offsets[drop:]]
    return ids, offsets


def random_batch(rng, n_texts):
    """Chunk cuts per text and each chunk's encoding (ids, offsets), some empty, some starting with BOS."""
    starts, encodings = [], []
    for _ in range(n_texts):
        n_chunks = int(rng.choice([1, 1, 2, 3, 5]))
        at, cuts = 0, []
        for k in range(n_chunks):
            length = int(rng.integers(0, 6))
            cuts.append((at, at + length))
            at += length + TAG
        starts.append(cuts)
        leads_with_bos = rng.random() < 0.6
        for a, b in cuts:
            n = int(rng.integers(0, 5))
            ids = rng.integers(2, 50, n).astype(np.int32)
            if n and leads_with_bos:
                ids[0] = BOS
            ends = np.sort(rng.integers(0, b - a + 1, (n, 2)), axis=1).astype(np.int64)
            encodings.append((ids, ends))
    return starts, encodings


@pytest.mark.parametrize("bos", [(BOS, False), (BOS, True), (None, False)])
def test_every_text_with_images_is_spliced_as_tokenizer_image_token_splices_it_alone(bos):
    rng = np.random.default_rng(11)
    for n_texts in [1, 2, 3, 8, 40]:
        starts, encodings = random_batch(rng, n_texts)
        counts = np.array([len(i) for i, _ in encodings], dtype=np.int64)
        flat = (np.concatenate([i for i, _ in encodings]), np.concatenate([o for _, o in encodings]).reshape(-1, 2),
                counts)
        at = list(range(10, 10 + n_texts))
        encoded = [None] * (10 + n_texts)
        _splice_batch(flat, starts, IMAGE_ID, bos, encoded, at)
        piece = 0
        for i, cuts in zip(at, starts):
            parts = encodings[piece : piece + len(cuts)]
            piece += len(cuts)
            if len(cuts) == 1:
                continue  # image-less texts: test_tokens.py
            ids, offsets = encoded[i]
            want_ids, want_offsets = tokenizer_image_token(cuts, parts, *bos)
            assert ids.dtype == np.int32 and offsets.dtype == np.int64
            assert ids.tolist() == want_ids and [tuple(o) for o in offsets.tolist()] == want_offsets, (cuts, parts)
