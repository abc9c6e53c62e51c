"""Token classes from offsets (the whitespace rule) and clear errors for tokenizer folders that cannot load."""

from __future__ import annotations

import numpy as np
import pytest

from litdata.classes import TokenClass as C
from litdata.tokenize.token_classes import token_classes
from litdata.tokenize.tokens import TokenizerError, load_tokenizer
from tests.helpers.real_tokenizers import sentencepiece_folder


def classes_of(text: str, spans: list[tuple[int, int, C]], offsets: list[tuple[int, int]]) -> list[str]:
    cls = np.zeros(len(text), dtype=np.uint8)
    for s, e, c in spans:
        cls[s:e] = c
    return [C(int(c)).label for c in token_classes(text, cls, np.array(offsets, dtype=np.int64).reshape(-1, 2))]


def test_a_space_only_token_takes_the_class_of_the_text_after_it():
    """`ASSISTANT: 42` -> `:`, `▁`, `4`, `2`: the lone `▁` is the answer's first token, as LLaVA supervises it."""
    text = "ASSISTANT: 42"
    assert classes_of(text, [(11, 13, C.RESPONSE)], [(0, 10), (10, 11), (11, 12), (12, 13)]) == [
        "markup", "response", "response", "response"]


def test_a_space_before_an_image_placeholder_keeps_its_own_class():
    """The image class belongs to placeholder tokens only (the loader may find images by class)."""
    text = "Look: <image>"
    assert classes_of(text, [(0, 6, C.INSTRUCTION), (6, 13, C.IMAGE)], [(0, 5), (5, 6), (6, 13)]) == [
        "instruction", "instruction", "image"]


def test_a_line_break_token_keeps_its_own_class():
    """ChatML's `\\n` after `assistant` and Llama 3's `\\n\\n` after a header stay markup."""
    text = "assistant\n\nRed"
    assert classes_of(text, [(11, 14, C.RESPONSE)], [(0, 9), (9, 11), (11, 14)]) == [
        "markup", "markup", "response"]


def test_a_token_straddling_spans_takes_the_class_of_its_first_non_space_character():
    text = "Q: why A"
    assert classes_of(text, [(3, 6, C.INSTRUCTION), (6, 8, C.RESPONSE)], [(0, 2), (2, 6), (6, 8)]) == [
        "markup", "instruction", "response"]


def test_trailing_spaces_with_nothing_after_them_keep_their_own_class():
    assert classes_of("ok  ", [(0, 4, C.RESPONSE)], [(0, 2), (2, 4)]) == ["response", "response"]


def test_tokens_the_tokenizer_added_are_markup():
    assert classes_of("Hi", [(0, 2, C.RESPONSE)], [(0, 0), (0, 2)]) == ["markup", "response"]


def test_a_folder_with_no_tokenizer_files_says_what_is_missing(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer.json .* and no tokenizer.model"):
        load_tokenizer(tmp_path)


def test_a_sentencepiece_model_without_its_config_says_what_is_missing(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer.model needs a tokenizer_config.json"):
        load_tokenizer(sentencepiece_folder(tmp_path / "sp", with_config=False))


def test_a_sentencepiece_folder_without_the_sentencepiece_package_says_so(tmp_path, monkeypatch):
    import litdata.tokenize.tokens as tokens

    monkeypatch.setattr(tokens, "_importable", lambda module: module != "sentencepiece")
    with pytest.raises(TokenizerError, match="needs the sentencepiece package"):
        load_tokenizer(sentencepiece_folder(tmp_path / "sp"))


def test_sentencepiece_legacy_false_adds_no_word_start_after_a_special_token(tmp_path):
    """transformers >= 4.36 slow LlamaTokenizer, `legacy: false`: `</s>USER` gives `USER`, not `▁US`,`ER`."""
    import json

    from litdata.tokenize.tokens import encode_texts

    got = {}
    for legacy in (True, False):
        folder = sentencepiece_folder(tmp_path / str(legacy))
        config = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "legacy": legacy}))
        tok, info = load_tokenizer(folder)
        assert info.backend == "sentencepiece" and info.legacy is legacy
        ids, _ = encode_texts(tok, ["Hi</s>USER:"])[0]
        got[legacy] = tok.convert_ids_to_tokens(ids.tolist())
    assert got[True] == ["▁Hi", "</s>", "▁US", "ER", ":"]
    assert got[False] == ["▁Hi", "</s>", "USER", ":"]


def _one_token_class(text, cls, a, b):
    """DESIGN.md's rule for one token, written out character by character."""
    spaces = "\t\n\x0b\x0c\r \x85\xa0\u3000"
    if a == b:
        return C.MARKUP
    first = next((j for j in range(a, b) if text[j] not in spaces), None)
    if first is not None:
        return C(int(cls[first]))
    after = next((j for j in range(b, len(text)) if text[j] not in spaces), None)
    if set(text[a:b]) == {" "} and after is not None and cls[after] != C.IMAGE:
        return C(int(cls[after]))
    return C(int(cls[a]))


_ALPHABETS = {
    "unicode": [" ", " ", "  ", "\n", "\t", "\u3000", "a", "b", "é", "😀", "<image>"],
    # ASCII texts are read byte by byte, a path of their own
    "ascii": [" ", " ", "  ", "\n", "\t", "a", "b", "<image>"],
    # whitespace runs longer than the few characters followed one at a time (then searched)
    "long runs": [" " * 9, "  \n   ", "\t" * 6, "\xa0 ", "a", "<image>"],
}


@pytest.mark.parametrize("alphabet", list(_ALPHABETS))
def test_classes_of_many_texts_at_once_are_each_texts_own(alphabet):
    """token_classes_many lays the texts end to end; nothing may look past the end of its own text (trailing
    spaces before the next text's words, image tags at the start of the next text)."""
    import itertools
    import random

    from litdata.tokenize.token_classes import token_classes_many

    rng = random.Random(7)
    alphabet = _ALPHABETS[alphabet]
    for _ in range(200):
        texts, classes, offsets = [], [], []
        for _ in range(rng.randint(1, 6)):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            cls = np.array([rng.choice([0, 2, 4, 5]) for _ in text], dtype=np.uint8)
            cuts = sorted(rng.randint(0, len(text)) for _ in range(rng.randint(0, 8)))
            texts.append(text)
            classes.append(cls)
            offsets.append(np.array(list(itertools.pairwise(cuts)), dtype=np.int64).reshape(-1, 2))
        got = token_classes_many(texts, classes, offsets)
        for text, cls, offs, g in zip(texts, classes, offsets, got):
            assert [C(int(c)) for c in g] == [_one_token_class(text, cls, a, b) for a, b in offs], (text, offs)


@pytest.mark.parametrize("folder", ["demo", "llama2", "sentencepiece"])
def test_a_batch_of_llava_renderings_gives_each_record_what_it_gets_alone(folder, tmp_path):
    """Records with and without images share one encode_batch; the image-less ones are handled for the whole
    batch at once (BOS prepended by litdata for the demo tokenizer, the tokenizer's own BOS for LLaMA ones). Each
    must equal its own encoding, and an image-less one what LLaVA's `tokenizer_image_token` gives (BOS, then the
    text's ids)."""
    from litdata.render.base import Rendered
    from litdata.tokenize.batch import encode_rendered
    from tests.helpers.output_digests import DEMO_TOKENIZER
    from tests.helpers.real_tokenizers import llama2_folder

    path = {"demo": lambda: DEMO_TOKENIZER, "llama2": lambda: llama2_folder(tmp_path / "l", legacy=False),
            "sentencepiece": lambda: sentencepiece_folder(tmp_path / "sp")}[folder]()
    tok, info = load_tokenizer(path)
    texts = ["A chat. USER: <image>\nWhat is it? ASSISTANT: A cat.</s>", "USER: hi  there ASSISTANT: 42</s>",
             "<image>", "two <image> and <image>\there", " leading space", "x"]
    rendered = [Rendered(text=t, char_classes=np.arange(len(t), dtype=np.uint8) % 6, llava_chunks=True) for t in texts]
    batch = encode_rendered(tok, rendered, info.image_token_id)
    for r, (ids, classes) in zip(rendered, batch):
        alone_ids, alone_classes = encode_rendered(tok, [r], info.image_token_id)[0]
        assert ids.tolist() == alone_ids.tolist() and classes.tolist() == alone_classes.tolist(), r.text
        if "<image>" not in r.text:
            sp = getattr(tok, "litdata_sentencepiece", None)  # SentencePiece's own ids (test_real_tokenizers.py)
            if sp is None:
                reference = tok(r.text).input_ids
            else:
                reference = sp.encode_batch([r.text], add_special_tokens=True)[0][0].tolist()
            if reference[:1] != [tok.bos_token_id]:
                reference = [tok.bos_token_id] + reference
            assert ids.tolist() == reference, r.text
            assert classes[0] == C.MARKUP, r.text  # BOS is never supervised


@pytest.mark.parametrize("shape", [(), (2,)])
def test_rows_inserted_before_sorted_positions_are_what_np_insert_gives(shape):
    """_splice_batch prepends BOS to every image-less text of a batch with _insert_rows (sorted positions,
    repeated where a chunk has no tokens, up to the end)."""
    from litdata.tokenize.batch import _insert_rows

    rng = np.random.default_rng(5)
    for n in [0, 1, 2, 7, 50]:
        a = rng.integers(0, 1000, (n, *shape))
        for k in [0, 1, 3, 20]:
            at = np.sort(rng.integers(0, n + 1, k))
            assert np.array_equal(_insert_rows(a, at, -1), np.insert(a, at, -1, axis=0)), (n, at)
