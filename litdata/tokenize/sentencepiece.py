"""SentencePiece's own ids for a `tokenizer.model`-only folder (how Vicuna and LLaVA checkpoints ship).

transformers converts such a folder to a fast tokenizer, and the conversion disagrees with SentencePiece at runs
of spaces (`▁▁▁▁`,`#` where SentencePiece gives `▁▁▁`,`▁#`). The model was trained on SentencePiece's ids, so
those are the ones compiled. This reproduces transformers' slow `LlamaTokenizer` (what LLaVA loads): the text is
split at added tokens (`<s>`, `</s>`, `<image>`, ...), which become their ids, and every other piece is encoded by
SentencePiece. With `legacy: true` each piece gets SentencePiece's word-start prefix; with `legacy: false` only
the start of the text does (the slow tokenizer's rule since transformers 4.36). Offsets come from SentencePiece's
own piece spans, so token classes are found exactly as for fast tokenizers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class SentencePieceEncoder:
    def __init__(self, model_file: Path, added: dict[str, int], *, bos_id: int | None, add_bos: bool,
                 eos_id: int | None, add_eos: bool, legacy: bool) -> None:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb

        proto = pb.ModelProto()
        proto.ParseFromString(Path(model_file).read_bytes())
        self.with_prefix = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        proto.normalizer_spec.add_dummy_prefix = False
        self.without_prefix = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self.added = dict(added)
        # Longest first, so that a special token never loses to a shorter one that is its prefix.
        names = sorted(self.added, key=lambda s: (-len(s), s))
        self.split_re = re.compile("(" + "|".join(re.escape(s) for s in names) + ")") if names else None
        self.prefix = [bos_id] if add_bos and bos_id is not None else []
        self.suffix = [eos_id] if add_eos and eos_id is not None else []
        self.legacy = legacy

    def encode_batch(self, texts: Sequence[str], *, add_special_tokens: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self._encode(t, add_special_tokens) for t in texts]

    def _encode(self, text: str, add_special_tokens: bool) -> tuple[np.ndarray, np.ndarray]:
        ids: list[int] = list(self.prefix) if add_special_tokens else []
        offs: list[tuple[int, int]] = [(0, 0)] * len(ids)
        at = 0
        for piece in self.split_re.split(text) if self.split_re else [text]:
            if not piece:
                continue
            if piece in self.added:
                ids.append(self.added[piece])
                offs.append((at, at + len(piece)))
            else:
                sp = self.with_prefix if (self.legacy or at == 0) else self.without_prefix
                self._pieces(sp, piece, at, ids, offs)
            at += len(piece)
        if add_special_tokens and self.suffix:
            ids += self.suffix
            offs += [(len(text), len(text))] * len(self.suffix)
        return np.array(ids, dtype=np.int32), np.array(offs, dtype=np.int64).reshape(-1, 2)

    @staticmethod
    def _pieces(sp, text: str, at: int, ids: list[int], offs: list[tuple[int, int]]) -> None:
        """SentencePiece's ids for `text`, with character offsets (its spans are UTF-8 byte offsets).

        Byte-fallback pieces of one character come with empty spans except the last; each gets the whole
        character's span, so that all of them take its class.
        """
        raw = text.encode("utf-8")
        # char_at[b] = the index of the character that starts at byte b (the number of characters before b).
        char_at = np.cumsum([0] + [1 if (c & 0xC0) != 0x80 else 0 for c in raw])
        pieces = sp.encode(text, return_type="proto").pieces
        spans = [(p.begin, p.end) for p in pieces]
        for k in range(len(spans) - 2, -1, -1):
            if spans[k][0] == spans[k][1]:
                spans[k] = (spans[k][0], spans[k + 1][1])
        for p, (b, e) in zip(pieces, spans):
            ids.append(p.id)
            offs.append((at + int(char_at[b]), at + int(char_at[e])))
