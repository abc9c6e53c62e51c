"""Token classes and weights of a rendered, tokenized record: golden class runs per template, the
first-non-space rule, and vit supervising exactly what LLaVA-1.5 supervises."""

import numpy as np
import pytest

from litdata.classes import TokenClass as C
from litdata.classes import class_weights
from litdata.demo import DEMO_TOKENIZER_DIR
from litdata.encode import Encoder, EncodeSpec
from litdata.records import Conversation, ImageRef, Provenance, Role, Turn
from litdata.records.document import ImageBlob

PNG = ImageBlob(ext="png", data=b"", width=1, height=1)


def conversation(*turns, images=0):
    return Conversation(provenance=Provenance(source="t.json", index=7, id="r7"),
                        turns=tuple(Turn(role=r, text=t) for r, t in turns),
                        images=tuple(ImageRef(path=f"{i}.png") for i in range(images)))


SAMPLE = conversation(
    (Role.USER, "<image>\nWhat colour is the circle? Answer the question using a single word or phrase."),
    (Role.ASSISTANT, "Red."),
    (Role.USER, "Compare it with this one: <image>"),
    (Role.ASSISTANT, "The second circle is larger and blue."),
    images=2,
)
TEMPLATE_SHAPE = "answer the question using a single word or phrase."


def encoder(template="vicuna_v1", mode="lit", shapes=frozenset({TEMPLATE_SHAPE}), **kw):
    spec = EncodeSpec(tokenizer=str(DEMO_TOKENIZER_DIR), template=template, weights=class_weights(mode, kw.pop(
        "overrides", None)), seq_len=kw.pop("seq_len", 4096), image_tokens=kw.pop("image_tokens", 8),
        overflow=kw.pop("overflow", "drop"), image_root=None, max_pixels=10**7, template_shapes=shapes)
    enc = Encoder(spec)
    enc._images = lambda conv: tuple(PNG for _ in conv.images)  # images are tested in test_images.py
    return enc


def class_runs(enc, doc):
    """(decoded text, class) for each run of equal class."""
    cls = doc.classes
    cuts = [0, *(np.flatnonzero(np.diff(cls)) + 1).tolist(), len(cls)]
    return [(enc.tokenizer.decode(doc.tokens[a:b].tolist()), C(int(cls[a])).label) for a, b in zip(cuts, cuts[1:])]


def encode_one(enc, conv=SAMPLE):
    (doc,) = enc.encode_batch([conv])
    return doc


# A token made only of spaces takes the class of the text after it (DESIGN.md): " Answer" is one template run.
GOLDEN = {
    "vicuna_v1": [
        ("<s>", "markup"),
        ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
         "detailed, and polite answers to the user's questions.", "system"),
        (" USER: ", "markup"), ("<image>", "image"), ("\nWhat colour is the circle?", "instruction"),
        (" Answer the question using a single word or phrase.", "task_template"),
        (" ASSISTANT:", "markup"), (" Red.</s>", "response"), ("USER:", "markup"),
        (" Compare it with this one: ", "instruction"), ("<image>", "image"), (" ASSISTANT:", "markup"),
        (" The second circle is larger and blue.</s>", "response"),
    ],
    "chatml": [
        ("<|im_start|>system\n", "markup"), ("You are a helpful assistant.", "system"),
        ("<|im_end|>\n<|im_start|>user\n", "markup"), ("<image>", "image"),
        ("\nWhat colour is the circle?", "instruction"),
        (" Answer the question using a single word or phrase.", "task_template"),
        ("<|im_end|>\n<|im_start|>assistant\n", "markup"), ("Red.<|im_end|>", "response"),
        ("\n<|im_start|>user\n", "markup"), ("Compare it with this one: ", "instruction"), ("<image>", "image"),
        ("<|im_end|>\n<|im_start|>assistant\n", "markup"),
        ("The second circle is larger and blue.<|im_end|>", "response"), ("\n", "markup"),
    ],
    "llama3": [
        ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n", "markup"), ("<image>", "image"),
        ("\nWhat colour is the circle?", "instruction"),
        (" Answer the question using a single word or phrase.", "task_template"),
        ("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "markup"), ("Red.<|eot_id|>", "response"),
        ("<|start_header_id|>user<|end_header_id|>\n\n", "markup"), ("Compare it with this one: ", "instruction"),
        ("<image>", "image"), ("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "markup"),
        ("The second circle is larger and blue.<|eot_id|>", "response"),
    ],
}


@pytest.mark.parametrize("template", sorted(GOLDEN))
def test_golden_class_runs(template):
    enc = encoder(template)
    assert class_runs(enc, encode_one(enc)) == GOLDEN[template]


def test_auto_template_uses_the_tokenizers_chat_template():
    enc = encoder("auto")
    runs = class_runs(enc, encode_one(enc))
    assert ("Red.<|im_end|>", "response") in runs
    assert (" Answer the question using a single word or phrase.", "task_template") in runs
    assert [c for _, c in runs].count("image") == 2


def test_weights_follow_the_mode_and_the_first_token_is_never_supervised():
    lit, vit = encode_one(encoder(mode="lit")), encode_one(encoder(mode="vit"))
    assert np.array_equal(lit.classes, vit.classes)
    assert lit.weights[0] == vit.weights[0] == 0
    instr = lit.classes == C.INSTRUCTION
    assert (lit.weights[instr] == 1).all() and (vit.weights[instr] == 0).all()
    for cls in (C.MARKUP, C.SYSTEM, C.IMAGE, C.TASK_TEMPLATE):
        assert (lit.weights[lit.classes == cls] == 0).all()
    half = encode_one(encoder(overrides={C.INSTRUCTION: 0.5}))
    assert (half.weights[instr] == 0.5).all()


def test_vit_supervises_exactly_what_llava_1_5_supervises():
    """LLaVA-1.5 (preprocess_v1) supervises each answer and its `</s>`; nothing else."""
    enc = encoder(mode="vit")
    doc = encode_one(enc)
    sup = doc.weights > 0
    cuts = np.flatnonzero(np.diff(np.concatenate([[0], sup.astype(np.int8), [0]])))
    runs = [enc.tokenizer.decode(doc.tokens[a:b].tolist()).strip() for a, b in zip(cuts[::2], cuts[1::2])]
    assert runs == ["Red.</s>", "The second circle is larger and blue.</s>"]


def test_too_long_is_rejected_or_truncated_at_an_image_boundary():
    enc = encoder(seq_len=40, image_tokens=20)
    (rej,) = enc.encode_batch([SAMPLE])
    assert rej.reason.value == "too_long" and "> --seq-len 40" in rej.message
    enc = encoder(seq_len=80, image_tokens=20, overflow="truncate")
    doc = encode_one(enc)
    assert doc.truncated_from is not None and doc.expanded_length(20) <= 80
    assert len(doc.images) == int((doc.tokens == enc.tokinfo.image_token_id).sum())


@pytest.mark.parametrize("template", ["vicuna_v1", "chatml"])
def test_a_batch_gives_each_record_what_it_gets_alone(template):
    """Encoder.finish weighs a whole batch and counts its image tokens at once: every record of a mixed batch
    (images, none, truncated, an image-count mismatch, a one-word answer) must come out as it does alone, its
    weights `weigh(classes)` with its own first token at 0."""
    from litdata.weigh import weigh

    short = conversation((Role.USER, "Hi"), (Role.ASSISTANT, "Yo"))
    text = conversation((Role.USER, "Name a colour. " * 30), (Role.ASSISTANT, "Blue, " * 40))
    mismatch = conversation((Role.USER, "<image> and <image>"), (Role.ASSISTANT, "Two."), images=1)
    batch = [SAMPLE, short, text, mismatch, SAMPLE, short]
    # markup weighed, so that each document's first token (markup) is 0 only because it comes first
    enc = encoder(template=template, seq_len=120, image_tokens=8, overflow="truncate", overrides={C.MARKUP: 0.5})
    together = enc.encode_batch(batch)
    for conv, got in zip(batch, together):
        (alone,) = enc.encode_batch([conv])
        assert type(got) is type(alone)
        if hasattr(alone, "reason"):
            assert (got.reason, got.message) == (alone.reason, alone.message)
            continue
        assert np.array_equal(got.tokens, alone.tokens) and np.array_equal(got.classes, alone.classes)
        assert np.array_equal(got.weights, alone.weights)
        assert np.array_equal(got.weights, weigh(got.classes, enc.table)) and got.weights.dtype == alone.weights.dtype
        assert (got.truncated_from, got.meta, len(got.images)) == (alone.truncated_from, alone.meta, len(alone.images))
    assert [type(d).__name__ for d in together].count("Reject") == 1 and together[2].truncated_from is not None
