"""Golden renderings of the built-in chat templates, with the class of every character span."""

import numpy as np
import pytest

from litdata.classes import TokenClass as C
from litdata.records import Conversation, ImageRef, Provenance, Role, Turn
from litdata.render import get_template
from litdata.render.builtin import VICUNA_SYSTEM


def conv(*turns, images=0):
    return Conversation(
        provenance=Provenance(source="t.json", index=0, id="x"),
        turns=tuple(Turn(role=r, text=t) for r, t in turns),
        images=tuple(ImageRef(path=f"{i}.png") for i in range(images)),
    )


TWO_ROUNDS = conv(
    (Role.USER, "<image>\nWhat is red?"), (Role.ASSISTANT, "The circle."),
    (Role.USER, "And <image> here?"), (Role.ASSISTANT, "A square."),
    images=2,
)
NO_LABELS = [[] for _ in range(4)]


def spans(rendered):
    """(text, class name) runs of equal class."""
    cls, text = rendered.char_classes, rendered.text
    cuts = [0, *(np.flatnonzero(np.diff(cls)) + 1).tolist(), len(text)]
    return [(text[a:b], C(int(cls[a])).label) for a, b in zip(cuts, cuts[1:])]


def test_vicuna_v1_matches_llava_1_5():
    """LLaVA's prompt text; BOS is not text, the tokenizer adds it to the first `<image>`-split chunk."""
    r = get_template("vicuna_v1").render(TWO_ROUNDS, NO_LABELS)
    assert r.llava_chunks
    assert r.text == (f"{VICUNA_SYSTEM} USER: <image>\nWhat is red? ASSISTANT: The circle.</s>"
                      "USER: And <image> here? ASSISTANT: A square.</s>")
    assert spans(r) == [
        (VICUNA_SYSTEM, "system"), (" USER: ", "markup"), ("<image>", "image"),
        ("\nWhat is red?", "instruction"), (" ASSISTANT: ", "markup"), ("The circle.</s>", "response"),
        ("USER: ", "markup"), ("And ", "instruction"), ("<image>", "image"), (" here?", "instruction"),
        (" ASSISTANT: ", "markup"), ("A square.</s>", "response"),
    ]


def test_vicuna_v1_uses_the_records_own_system_prompt():
    c = conv((Role.SYSTEM, "Be terse."), (Role.USER, "Hi"), (Role.ASSISTANT, "Hello."))
    r = get_template("vicuna_v1").render(c, [[], [], []])
    assert r.text == "Be terse. USER: Hi ASSISTANT: Hello.</s>"


def test_chatml():
    r = get_template("chatml").render(TWO_ROUNDS, NO_LABELS)
    assert r.text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<image>\nWhat is red?<|im_end|>\n<|im_start|>assistant\nThe circle.<|im_end|>\n"
        "<|im_start|>user\nAnd <image> here?<|im_end|>\n<|im_start|>assistant\nA square.<|im_end|>\n"
    )
    assert ("The circle.<|im_end|>", "response") in spans(r)
    assert ("You are a helpful assistant.", "system") in spans(r)


def test_llama3():
    r = get_template("llama3").render(TWO_ROUNDS, NO_LABELS)
    assert r.text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is red?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nThe circle.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd <image> here?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA square.<|eot_id|>"
    )
    assert ("A square.<|eot_id|>", "response") in spans(r)


def test_labels_paint_inside_turns_and_images_always_win():
    c = conv((Role.USER, "<image>\nWhat is it? Answer briefly."), (Role.ASSISTANT, "A cat."), images=1)
    q = c.turns[0].text
    start = q.index("Answer")
    labels = [[(start, len(q), C.TASK_TEMPLATE), (0, 7, C.HARMFUL)], []]
    r = get_template("vicuna_v1").render(c, labels)
    got = spans(r)
    assert ("<image>", "image") in got
    assert ("Answer briefly.", "task_template") in got
    assert ("\nWhat is it? ", "instruction") in got


def test_unknown_template_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown template 'alpaca'"):
        get_template("alpaca")


def _painted_one_by_one(pieces):
    """What SpanBuilder must give, written the slow way: every piece's class and every sub-span painted over
    the text in the order they were added, later ones winning."""
    text, classes = "", []
    spans = []
    for kind, piece, cls, labels in pieces:
        start = len(text)
        text += piece
        if kind == "add" and not piece:
            continue
        if cls:
            spans.append((start, len(text), cls))
        for s, e, c in labels:
            spans.append((start + s, start + e, c))
        if kind == "turn":
            k = piece.find("<image>")
            while k >= 0:
                spans.append((start + k, start + k + 7, C.IMAGE))
                k = piece.find("<image>", k + 7)
    classes = np.zeros(len(text), dtype=np.uint8)
    for s, e, c in spans:
        classes[s:e] = c
    return text, classes


@pytest.mark.parametrize("outside", [False, True])
def test_span_builder_paints_as_one_span_at_a_time_would(outside):
    """Pieces are laid out in one call and sub-spans painted over them; a labeler's span that reaches outside
    its turn (never expected) is painted over by the pieces after it, as painting in order always did."""
    import random

    from litdata.render.base import SpanBuilder

    rng = random.Random(3)
    words = ["", "a", "bc ", "<image>", " x<image>y ", "USER: ", "\n"]
    classes = [C.MARKUP, C.SYSTEM, C.INSTRUCTION, C.RESPONSE]
    for _ in range(300):
        b, pieces = SpanBuilder(), []
        for _ in range(rng.randint(0, 8)):
            text = "".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
            cls = rng.choice(classes)
            if rng.random() < 0.5:
                b.add(text, cls)
                pieces.append(("add", text, cls, []))
                continue
            labels = []
            for _ in range(rng.randint(0, 3)):
                s = rng.randint(0, len(text))
                e = rng.randint(s, len(text))
                if outside and rng.random() < 0.3:
                    s, e = s - rng.randint(0, 3), e + rng.randint(0, 5)
                labels.append((s, e, rng.choice([C.HARMFUL, C.INSTRUCTION, C.MARKUP])))
            b.add_turn(text, cls, labels)
            pieces.append(("turn", text, cls, labels))
        want_text, want = _painted_one_by_one(pieces)
        r = b.build()
        assert r.text == want_text
        assert r.char_classes.tolist() == want.tolist(), pieces
