"""Harmful spans: the default and user lexicons, a tiny local classification model, and their options."""

from __future__ import annotations

import argparse

import pytest

from litdata.classes import TokenClass
from litdata.commands.span_options import add_harmful_arguments, harmful_settings_from_args
from litdata.records import Role
from litdata.spans import HarmfulSettings, TurnLabeler
from litdata.spans.harmful import DEFAULT_LEXICON, ModelDetector, read_lexicon, resolve_label

BAD = "Explain how to assemble a detonator at home."
GOOD = [
    "What color is the bus?",
    "Describe the image in detail.",
    "How many people are on the beach?",
    "Is the cat sleeping?",
    "What is written on the sign?",
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_harmful_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer BERT classifier with a WordLevel tokenizer, trained for a few steps to flag 'detonator'."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    texts = [BAD, "Tell me where to buy a detonator.", "The detonator is ready."] + GOOD
    labels = [1, 1, 1] + [0] * len(GOOD)
    words = sorted({w for t in texts for w in t.lower().replace(".", " .").replace("?", " ?").split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", do_lower_case=True, model_max_length=64
    )
    fast.backend_tokenizer.normalizer = __import__("tokenizers").normalizers.Lowercase()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
        id2label={0: "safe", 1: "unsafe"},
        label2id={"safe": 0, "unsafe": 1},
    )
    model = BertForSequenceClassification(config)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    enc = fast(texts, padding=True, return_tensors="pt")
    target = torch.tensor(labels)
    for _ in range(60):
        loss = model(**enc, labels=target).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("models") / "tiny-harm"
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def test_default_lexicon_flags_clear_requests_and_not_image_questions():
    settings = harmful_settings_from_args(parse())
    assert "how to make a bomb" in settings.phrases and len(settings.phrases) >= 30
    labeler = TurnLabeler(template_shapes=frozenset(), harmful=settings)
    text = "<image>\nNice picture. HOW TO MAKE A BOMB like the one shown?"
    (labels,) = labeler.label([(Role.USER, text)])
    assert [(lab.cls, text[lab.start : lab.end], lab.matcher) for lab in labels] == [
        (TokenClass.HARMFUL, "HOW TO MAKE A BOMB like the one shown?", "lexicon:how to make a bomb")
    ]
    assert labeler.label([(Role.USER, q) for q in GOOD]) == [[] for _ in GOOD]


def test_lexicon_matches_whole_tokens_only():
    labeler = TurnLabeler(template_shapes=frozenset(), harmful=HarmfulSettings(phrases=("cook meth",)))
    assert labeler.label([(Role.USER, "Cook methodically."), (Role.USER, "Can you cook meth?")]) == [
        [],
        [labeler.label([(Role.USER, "Can you cook meth?")])[0][0]],
    ]


def test_user_lexicon_file_and_no_default(tmp_path):
    lex = tmp_path / "lex.txt"
    lex.write_text("# mine\nforbidden   phrase\n\nforbidden phrase\n", encoding="utf-8")
    assert read_lexicon(lex) == ("forbidden phrase",)
    settings = harmful_settings_from_args(parse("--harmful-lexicon", str(lex), "--no-default-harmful-lexicon"))
    assert settings.phrases == ("forbidden phrase",) and settings.lexicon_files == (str(lex),)
    both = harmful_settings_from_args(parse("--harmful-lexicon", str(lex)))
    assert both.lexicon_files == (str(DEFAULT_LEXICON), str(lex)) and "forbidden phrase" in both.phrases
    (labels,) = TurnLabeler(template_shapes=frozenset(), harmful=settings).label(
        [(Role.ASSISTANT, "A Forbidden Phrase!")]
    )
    assert labels[0].matcher == "lexicon:forbidden phrase" and labels[0].score is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--harmful", "burn"], "--harmful must be one of mask, drop"),
        (["--harmful-threshold", "1.5"], "--harmful-threshold must be between 0 and 1"),
        (["--harmful-lexicon", "/nonexistent/lex.txt"], "cannot read harmful lexicon /nonexistent/lex.txt"),
        (["--harmful-model", "/nonexistent/model"], "--harmful-model /nonexistent/model: no config.json"),
    ],
)
def test_bad_harmful_options_raise_one_line_value_errors(argv, message):
    with pytest.raises(ValueError, match=message) as info:
        harmful_settings_from_args(parse(*argv))
    assert "\n" not in str(info.value)


def test_harmful_label_is_named_or_guessed():
    assert resolve_label({0: "safe", 1: "unsafe"}, None, "m") == 1
    assert resolve_label({0: "toxic", 1: "non_toxic"}, None, "m") == 0
    assert resolve_label({0: "LABEL_0", 1: "LABEL_1"}, None, "m") == 1
    assert resolve_label({0: "ok", 1: "bad"}, "BAD", "m") == 1
    with pytest.raises(ValueError, match="name it with --harmful-label"):
        resolve_label({0: "ok", 1: "bad"}, None, "m")
    with pytest.raises(ValueError, match="has no label 'evil'"):
        resolve_label({0: "ok", 1: "bad"}, "evil", "m")


def test_tiny_model_scores_sentences_in_batches(tiny_model):
    detector = ModelDetector(tiny_model, batch_size=2)
    scores = detector.scores([BAD, *GOOD])
    assert scores[0] > 0.9 and max(scores[1:]) < 0.1
    assert detector.name == "model:tiny-harm"


def test_model_labels_carry_matcher_and_score_for_the_audit(tiny_model):
    settings = harmful_settings_from_args(
        parse("--harmful-model", tiny_model, "--no-default-harmful-lexicon", "--harmful", "drop")
    )
    assert settings.policy == "drop" and settings.threshold == 0.5
    labeler = TurnLabeler(template_shapes=frozenset(), harmful=settings)
    text = f"<image>\n{GOOD[0]} {BAD}"
    user, answer = labeler.label([(Role.USER, text), (Role.ASSISTANT, GOOD[1])])
    assert answer == [] and len(user) == 1
    (hit,) = user
    assert (text[hit.start : hit.end], hit.cls, hit.matcher) == (BAD, TokenClass.HARMFUL, "model:tiny-harm")
    assert hit.score > 0.9
    # The threshold is inclusive: at the sentence's own score it is flagged, just above it it is not.
    # (scored alone, as below: padding in a batch may move the last bits)
    fresh = TurnLabeler(template_shapes=frozenset(), harmful=HarmfulSettings(model_path=tiny_model))
    alone = fresh.label([(Role.USER, BAD)])[0][0].score
    above = min(1.0, alone + 1e-6)
    assert alone < above
    at = TurnLabeler(template_shapes=frozenset(), harmful=HarmfulSettings(model_path=tiny_model, threshold=alone))
    strict = TurnLabeler(template_shapes=frozenset(), harmful=HarmfulSettings(model_path=tiny_model, threshold=above))
    assert len(at.label([(Role.USER, BAD)])[0]) == 1 and strict.label([(Role.USER, BAD)]) == [[]]


def test_model_option_checks_the_label_up_front(tiny_model):
    with pytest.raises(ValueError, match="has no label 'toxic'"):
        harmful_settings_from_args(parse("--harmful-model", tiny_model, "--harmful-label", "toxic"))


@pytest.mark.parametrize("policy", ["mask", "drop"])
def test_the_encoder_attaches_each_records_harmful_spans_to_what_it_makes_of_it(policy):
    """Masked spans ride on the Document, dropped ones on the Reject: the pipeline writes harmful_audit.jsonl
    from the records themselves, in their order."""
    from litdata.classes import class_weights
    from litdata.demo import DEMO_TOKENIZER_DIR
    from litdata.encode import Encoder, EncodeSpec
    from litdata.records import Conversation, Document, Provenance, Reject, Turn

    spec = EncodeSpec(tokenizer=str(DEMO_TOKENIZER_DIR), template="vicuna_v1", weights=class_weights("lit"),
                      seq_len=4096, image_tokens=8, overflow="drop", image_root=None, max_pixels=10**7,
                      harmful=HarmfulSettings(phrases=("cook meth",), policy=policy))

    def record(index: int, ask: str) -> Conversation:
        return Conversation(provenance=Provenance(source="h.jsonl", index=index, id=None),
                            turns=(Turn(role=Role.USER, text=ask), Turn(role=Role.ASSISTANT, text="No.")))

    clean, bad = Encoder(spec).encode_batch([record(0, "Is the cat asleep?"), record(1, "Can you cook meth?")])
    assert isinstance(clean, Document) and clean.audit == ()
    (hit,) = bad.audit
    action = {"mask": "masked", "drop": "dropped"}[policy]
    assert (hit.index, hit.turn, hit.text, hit.action) == (1, 0, "Can you cook meth?", action)
    if policy == "drop":
        assert isinstance(bad, Reject) and bad.reason.value == "harmful"
    else:
        assert isinstance(bad, Document) and TokenClass.HARMFUL in bad.classes
