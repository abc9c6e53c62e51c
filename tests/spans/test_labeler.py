"""TurnLabeler: template and harmful spans inside turns, as the compile pipeline receives them."""

from __future__ import annotations

import itertools
import pickle

from litdata.classes import TokenClass
from litdata.spans import HarmfulSettings, SpanLabel, TurnLabeler
from litdata.spans.sentences import SentenceSplitter
from litdata.spans.shapes import prefix_shape, sentence_shape
from litdata.records import Role

SHORT = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."
BBOX = "Please provide the bounding box coordinate of the region this sentence describes: {}."
TEMPLATES = frozenset(
    {
        sentence_shape(SHORT),
        sentence_shape(LETTER),
        "please provide a short description for this region: <box>.",
        prefix_shape(sentence_shape(BBOX.format("x y z"))),
    }
)


def spans(text: str, labels: list[SpanLabel]) -> list[tuple[str, str]]:
    return [(lab.cls.label, text[lab.start : lab.end]) for lab in labels]


def test_template_sentence_offsets_are_exact_and_skip_the_image_tag():
    text = f"<image>\nWhat is the man holding? {SHORT}"
    (labels,) = TurnLabeler(template_shapes=TEMPLATES, harmful=None).label([(Role.USER, text)])
    assert spans(text, labels) == [("task_template", SHORT)]
    assert labels[0].start == text.index(SHORT) and labels[0].end == len(text)
    assert labels[0].matcher == "template" and labels[0].shape == sentence_shape(SHORT) and labels[0].score is None


def test_option_list_lines_stay_instruction_and_the_letter_template_is_found():
    text = f"<image>\nWhich animal is shown?\nA. cat\nB. dog\n{LETTER}"
    (labels,) = TurnLabeler(template_shapes=TEMPLATES, harmful=None).label([(Role.USER, text)])
    assert spans(text, labels) == [("task_template", LETTER)]


def test_sentences_split_at_newlines_and_image_tags():
    text = "<image>\nWhere is it? [0.1, 0.2, 0.3, 0.4] marks it.\nA. left\nB. right<image>Second image."
    (sents,) = SentenceSplitter().split([text])
    assert [text[s.start : s.end] for s in sents] == [
        "Where is it?",
        "[0.1, 0.2, 0.3, 0.4] marks it.",
        "A. left",
        "B. right",
        "Second image.",
    ]


def test_parametric_templates_are_labelled():
    labeler = TurnLabeler(template_shapes=TEMPLATES, harmful=None)
    region = "Please provide a short description for this region: [0.12, 0.34, 0.56, 0.78]."
    phrase = BBOX.format("a red circle on the left")
    labels = labeler.label([(Role.USER, region), (Role.ASSISTANT, "A red circle."), (Role.USER, phrase)])
    assert [lab.shape for turn in labels for lab in turn] == [
        "please provide a short description for this region: <box>.",
        "please provide the bounding box coordinate of the region this sentence describes: <arg>",
    ]
    assert labels[1] == []


def test_whole_template_turn_is_labelled_except_the_image_tag():
    text = f"<image>\n{SHORT}\n{LETTER}\n"
    (labels,) = TurnLabeler(template_shapes=TEMPLATES, harmful=None).label([(Role.USER, text)])
    assert [(lab.start, lab.end) for lab in labels] == [(7, 8 + len(SHORT) + 1), (8 + len(SHORT) + 1, len(text))]
    assert all(lab.cls is TokenClass.TASK_TEMPLATE for lab in labels)
    text2 = f"{SHORT} <image>"
    (labels2,) = TurnLabeler(template_shapes=TEMPLATES, harmful=None).label([(Role.USER, text2)])
    assert [(lab.start, lab.end) for lab in labels2] == [(0, len(SHORT) + 1)]


def test_templates_only_in_user_turns():
    labeler = TurnLabeler(template_shapes=TEMPLATES, harmful=None)
    assert labeler.label([(Role.SYSTEM, SHORT), (Role.USER, "Hi?"), (Role.ASSISTANT, SHORT)]) == [[], [], []]


def test_harmful_wins_over_template_and_labels_any_turn():
    harmful = HarmfulSettings(phrases=("single word",))
    labeler = TurnLabeler(template_shapes=TEMPLATES, harmful=harmful)
    text = f"What is it? {SHORT}"
    user, answer = labeler.label([(Role.USER, text), (Role.ASSISTANT, "One single word. Fine.")])
    assert spans(text, user) == [("harmful", SHORT)] and user[0].matcher == "lexicon:single word"
    assert spans("One single word. Fine.", answer) == [("harmful", "One single word.")]


def test_labels_are_sorted_and_non_overlapping():
    labeler = TurnLabeler(template_shapes=TEMPLATES, harmful=HarmfulSettings(phrases=("letter",)))
    text = f"<image>\n{SHORT}\n{LETTER}\nWhy?\n{SHORT}"
    (labels,) = labeler.label([(Role.USER, text)])
    assert [lab.cls for lab in labels] == [TokenClass.TASK_TEMPLATE, TokenClass.HARMFUL, TokenClass.TASK_TEMPLATE]
    assert all(a.end <= b.start for a, b in itertools.pairwise(labels))


def test_labeler_survives_pickling_and_labels_many_records():
    labeler = pickle.loads(
        pickle.dumps(TurnLabeler(template_shapes=TEMPLATES, harmful=HarmfulSettings(phrases=("x y",))))
    )
    records = [[(Role.USER, f"Q{i}? {SHORT}"), (Role.ASSISTANT, "A.")] for i in range(5)]
    out = labeler.label_many(records)
    assert [len(r) for r in out] == [2] * 5 and all(len(r[0]) == 1 for r in out)
    assert out == [labeler.label(r) for r in records]


def test_nothing_to_look_for_labels_nothing_without_loading_spacy():
    labeler = TurnLabeler(template_shapes=frozenset(), harmful=HarmfulSettings())
    assert labeler.label([(Role.USER, "How to make a bomb?")]) == [[]]
    assert labeler._splitter is None


def test_splitter_survives_its_cache_being_cleared_mid_batch():
    """Regression: a batch whose cached segments were evicted by the same call raised KeyError."""
    from litdata.spans.sentences import SentenceSplitter

    splitter = SentenceSplitter(cache_size=3)
    first = splitter.split(["Alpha one.", "Beta two."])
    again = splitter.split(["Alpha one.", "Gamma three.", "Delta four.", "Epsilon five."])
    assert again[0] == first[0]
    assert [len(s) for s in again] == [1, 1, 1, 1]


def test_skipping_spacy_on_segments_without_anchors_changes_no_label():
    """The fast path (spaCy only on segments that contain a template piece or a lexicon phrase) must give
    exactly the labels of splitting everything, on the demo data with its mined templates."""
    from litdata.spans.mining import mine_templates
    from litdata.config import HarmfulSettings, MiningSettings
    from litdata.demo import DEMO_SOURCES
    from litdata.read import read_sources
    from litdata.records import Conversation

    convs = [c for c in read_sources(DEMO_SOURCES) if isinstance(c, Conversation)]
    shapes = mine_templates(convs, MiningSettings()).template_shapes()
    harmful = HarmfulSettings(phrases=("circle", "blue square", "answer"))  # common words: many hits
    records = [[(t.role, t.text) for t in c.turns] for c in convs]
    fast = TurnLabeler(template_shapes=shapes, harmful=harmful)
    slow = TurnLabeler(template_shapes=shapes, harmful=harmful)
    slow._anchors = None  # every segment through spaCy
    got, want = fast.label_many(records), slow.label_many(records)
    assert got == want
    assert sum(len(t) for r in got for t in r) > 100


def test_segments_without_inner_punctuation_skip_spacy_with_the_same_sentences():
    """The splitter skips spaCy for segments it cannot split; check against spaCy itself on tricky text and on
    every user-turn segment of the demo."""
    from litdata.spans.sentences import _unsplittable, make_nlp, segments
    from litdata.demo import DEMO_SOURCES
    from litdata.read import read_sources
    from litdata.records import Conversation

    nlp = make_nlp()
    tricky = ['What is "x"?', "Hello world?!", "A. cat", "What? [0.1, 0.2]", "e.g. this", "pi is 3.14 ok",
              "Why?) yes", "Describe it in detail", "Is it red? Or blue", "Wait... what", "Say ¿qué? now"]
    demo = [t.text[a:b] for c in read_sources(DEMO_SOURCES) if isinstance(c, Conversation)
            for t in c.turns for a, b in segments(t.text)]
    fast = 0
    for seg in tricky + demo:
        if _unsplittable(seg):
            fast += 1
            assert [(s.start_char, s.end_char) for s in nlp(seg).sents] == [(0, len(seg))], seg
    assert fast > len(demo) // 2
