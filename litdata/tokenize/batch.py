"""A batch of rendered conversations through the tokenizer as their templates' reference code tokenizes them:
plain renderings in one `encode_batch`, LLaVA-style ones chunk by chunk and spliced as `tokenizer_image_token`
splices them; then each token's class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litdata.records.conversation import IMAGE_PLACEHOLDER
from litdata.render.base import Rendered
from litdata.tokenize.token_classes import token_classes_many
from litdata.tokenize.tokens import cut_rows, encode_with_offsets, flat_encodings, native_encode


def encode_rendered(tokenizer: Any, rendered: Sequence[Rendered], image_id: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, classes) for each rendered conversation, tokenized the way its template's reference code does
    (TokenizeJob, all in this thread)."""
    job = TokenizeJob(tokenizer, rendered, image_id)
    job.run_native()
    return job.result()


class TokenizeJob:
    """One batch of rendered conversations through the tokenizer, in three steps so that the native one can run
    in another thread while this one does Python work: the plan (here), `run_native` (the GIL-free batch encode
    calls, nothing else), and `result` (ids, offsets and classes read back).

    Plain renderings are one `encode_batch` call (what `apply_chat_template(tokenize=True)` does). LLaVA-style
    renderings are split at every `<image>` and all chunks of the batch go through one more `encode_batch` with
    the tokenizer's own special tokens, then are spliced as `tokenizer_image_token` splices them. The classes of
    all of them come from one `token_classes_many` call.
    """

    def __init__(self, tokenizer: Any, rendered: Sequence[Rendered], image_id: int) -> None:
        self.tokenizer, self.rendered, self.image_id = tokenizer, rendered, image_id
        self.plain = [i for i, r in enumerate(rendered) if not r.llava_chunks]
        self.chunked = [i for i, r in enumerate(rendered) if r.llava_chunks]
        self.cuts = [_chunk_starts(rendered[i].text) for i in self.chunked]
        self.bos = _bos_policy(tokenizer) if self.chunked else (None, False)
        self._texts = ([rendered[i].text for i in self.plain],
                       [rendered[i].text[a:b] for i, cuts in zip(self.chunked, self.cuts) for a, b in cuts])
        self._native: tuple[list, list] | None = None

    def run_native(self) -> None:
        plain, chunks = self._texts
        self._native = (native_encode(self.tokenizer, plain, add_special_tokens=False) if plain else [],
                        native_encode(self.tokenizer, chunks, add_special_tokens=True) if chunks else [])

    def result(self) -> list[tuple[np.ndarray, np.ndarray]]:
        assert self._native is not None, "run_native first"
        plain, chunks = self._native
        encoded: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.rendered)  # (ids, offsets)
        if plain:
            ids, offsets, counts = flat_encodings(plain)
            for i, got in zip(self.plain, zip(cut_rows(ids, counts), cut_rows(offsets, counts))):
                encoded[i] = got
        if chunks:
            _splice_batch(flat_encodings(chunks), self.cuts, self.image_id, self.bos, encoded, self.chunked)
        done = [e for e in encoded if e is not None]
        assert len(done) == len(self.rendered)
        classes = token_classes_many([r.text for r in self.rendered], [r.char_classes for r in self.rendered],
                                     [offsets for _, offsets in done])
        return [(ids, c) for (ids, _), c in zip(done, classes)]


def _splice_batch(flat: tuple[np.ndarray, np.ndarray, np.ndarray], starts: list, image_id: int,
                  bos: tuple[int | None, bool], encoded: list, at: Sequence[int]) -> None:
    """encoded[at[k]] = (ids, offsets) of text k from its chunks' encodings (all chunks of the batch end to end
    in `flat`), as `tokenizer_image_token` splices them."""
    ids, offsets, counts = flat
    n_cuts = np.fromiter(map(len, starts), dtype=np.int64, count=len(starts))
    first_piece = np.cumsum(n_cuts) - n_cuts
    bos_id, prepend = bos
    # A text without images is its one chunk (every text-only record): what _splice_many would make of it is
    # done here for all such texts at once, so that each is a view of the batch's arrays.
    single = first_piece[n_cuts == 1]
    piece_start = np.cumsum(counts) - counts
    if prepend:  # BOS in front, with an empty span
        ids = np.insert(ids, piece_start[single], bos_id)
        offsets = _insert_rows(offsets, piece_start[single], 0)
        counts = counts.copy()
        counts[single] += 1
    elif bos_id is not None:  # the tokenizer's own BOS stays, with an empty span
        head = piece_start[single[counts[single] > 0]]
        offsets[head[ids[head] == bos_id]] = 0
    parts = list(zip(cut_rows(ids, counts), cut_rows(offsets, counts)))
    where, many = np.asarray(at), n_cuts > 1
    for i, j in zip(where[n_cuts == 1].tolist(), single.tolist()):
        encoded[i] = parts[j]
    if many.any():
        spliced = _splice_many(ids, offsets, counts, starts, many, first_piece[many], image_id, bos)
        for i, got in zip(where[many].tolist(), spliced):
            encoded[i] = got


def _insert_rows(a: np.ndarray, at: np.ndarray, value: int) -> np.ndarray:
    """`np.insert(a, at, value, axis=0)` for sorted `at`. Each row moves as one item (a view as `np.void` of its
    size): np.insert moves the rows of a 2-D array through a 2-D boolean mask, ten times slower on a batch's
    offsets."""
    width = int(np.prod(a.shape[1:], dtype=np.int64))
    row = np.dtype((np.void, width * a.dtype.itemsize))
    items = np.ascontiguousarray(a).reshape(a.shape[0], width).view(row)[:, 0]
    k = at.shape[0]
    new = at + np.arange(k)  # where the inserted rows land, each after those inserted before it
    out = np.empty(items.shape[0] + k, dtype=row)
    out[new] = np.full((1, width), value, dtype=a.dtype).view(row)[0, 0]
    old = np.ones(out.shape[0], dtype=bool)
    old[new] = False
    out[old] = items
    return out.view(a.dtype).reshape(-1, *a.shape[1:])


def _chunk_starts(text: str) -> list[tuple[int, int]]:
    """(start, end) of the text between `<image>` placeholders, as `prompt.split('<image>')` cuts it."""
    cuts, at = [], 0
    while True:
        k = text.find(IMAGE_PLACEHOLDER, at)
        if k < 0:
            cuts.append((at, len(text)))
            return cuts
        cuts.append((at, k))
        at = k + len(IMAGE_PLACEHOLDER)


def _bos_policy(tokenizer: Any) -> tuple[int | None, bool]:
    """(BOS id, whether litdata must prepend it): a LLaMA tokenizer adds BOS itself; one that has a BOS token but
    does not add it (the bundled demo tokenizer) gets it prepended, since vicuna_v1 is a LLaMA template."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None, False
    probe = encode_with_offsets(tokenizer, ["a"], add_special_tokens=True)[0][0]
    return int(bos), not (probe.shape[0] and int(probe[0]) == bos)


def _splice_many(ids: np.ndarray, offsets: np.ndarray, counts: np.ndarray, starts: list, many: np.ndarray,
                 first: np.ndarray, image_id: int, bos: tuple[int | None, bool]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, offsets) of each text with images (`many`; its chunks from piece `first` on), spliced as LLaVA's
    `tokenizer_image_token` splices them: if a text's first chunk starts with BOS, BOS is kept once and the first
    token of every one of its chunks dropped; the image id goes between chunks. Offsets move from chunk to text
    coordinates (an image id gets its `<image>` tag's span), so the classes come from the text as a whole.

    All texts at once, by gathering: per text, the calls of a concatenation per chunk cost more than the copying.
    Each piece of the output is one optional leading token (BOS, or the image id before every chunk but the
    first) and then the chunk's kept tokens."""
    bos_id, prepend = bos
    cuts = [c for c, m in zip(starts, many.tolist()) if m]
    n_pieces = np.fromiter(map(len, cuts), dtype=np.int64, count=len(cuts))
    piece_start = np.cumsum(counts) - counts
    text_of = np.repeat(np.arange(len(first)), n_pieces)  # per piece of these texts
    own_first = np.cumsum(n_pieces) - n_pieces  # each text's first piece, counted among these texts' pieces
    pieces = np.repeat(first - own_first, n_pieces) + np.arange(int(n_pieces.sum()))
    chunk_at = np.fromiter((a for c in cuts for a, _ in c), dtype=np.int64, count=len(pieces))
    head = piece_start[first]
    drop = np.zeros(len(first), dtype=np.int64)
    if not prepend and bos_id is not None and ids.shape[0]:
        starts_with_bos = (counts[first] > 0) & (ids[np.minimum(head, ids.shape[0] - 1)] == bos_id)
        drop[starts_with_bos] = 1
    is_first = np.zeros(len(pieces), dtype=bool)
    is_first[own_first] = True
    lead = np.where(is_first, 1 if prepend else drop[text_of], 1)
    kept = np.maximum(counts[pieces] - drop[text_of], 0)
    width = lead + kept
    out_start = np.cumsum(width) - width
    total = int(width.sum())
    body = np.ones(total, dtype=bool)
    body[out_start[lead > 0]] = False  # the leading tokens' places
    taken = np.repeat(piece_start[pieces] + drop[text_of] - (np.cumsum(kept) - kept), kept)
    taken += np.arange(taken.shape[0])
    out_ids = np.empty(total, dtype=np.int32)
    out_offsets = np.empty((total, 2), dtype=np.int64)
    out_ids[body] = ids[taken]
    out_offsets[body] = offsets[taken] + np.repeat(chunk_at, kept)[:, None]
    led = lead > 0
    bos_led = is_first[led]  # a text's first piece leads only with BOS (bos_id is then known)
    out_ids[out_start[led]] = np.where(bos_led, -1 if bos_id is None else bos_id, image_id)
    tag = chunk_at[led]  # the `<image>` tag ends where the chunk after it starts
    out_offsets[out_start[led]] = np.where(bos_led[:, None], 0, np.stack([tag - len(IMAGE_PLACEHOLDER), tag], 1))
    per_text = np.bincount(text_of, weights=width, minlength=len(first)).astype(np.int64)
    return list(zip(cut_rows(out_ids, per_text), cut_rows(out_offsets, per_text)))
