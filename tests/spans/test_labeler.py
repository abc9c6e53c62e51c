"""TurnLabeler: template and harmful spans inside turns, as the compile pipeline receives them."""

from __future__ import annotations

import itertools
import pickle

from litdata.classes import TokenClass
from litdata.records import Role
from litdata.spans import HarmfulSettings, SpanLabel, TurnLabeler
from litdata.spans.sentences import SentenceSplitter
from litdata.spans.shapes import prefix_shape, sentence_shape

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


def _reference_labels(shapes, harmful: HarmfulSettings | None, records) -> list[list[list[SpanLabel]]]:
    """The labels by definition, without a shortcut: every segment of every turn through spaCy with the lexicon
    matcher (a splitter with a matcher never skips spaCy), every user-turn sentence's shape looked up."""
    from litdata.classes import TokenClass
    from litdata.spans.harmful import build_matcher
    from litdata.spans.labeler import _widen
    from litdata.spans.sentences import make_nlp
    from litdata.spans.shapes import matching_template

    nlp = make_nlp()
    phrases = harmful.phrases if harmful is not None and harmful.phrases else ("zzz never zzz",)
    splitter = SentenceSplitter(nlp, build_matcher(nlp, phrases))
    out = []
    for turns in records:
        got = []
        for (role, text), sents in zip(turns, splitter.split([text for _, text in turns])):
            labs = []
            for s in sents:
                shape = matching_template(text[s.start : s.end], shapes) if role is Role.USER else None
                if s.lexicon_hit is not None and harmful is not None:
                    labs.append(SpanLabel(start=s.start, end=s.end, cls=TokenClass.HARMFUL,
                                          matcher=f"lexicon:{s.lexicon_hit}"))
                elif shape is not None:
                    labs.append(SpanLabel(start=s.start, end=s.end, cls=TokenClass.TASK_TEMPLATE,
                                          matcher="template", shape=shape))
            got.append(_widen(text, labs) if labs and len(labs) == len(sents) else labs)
        out.append(got)
    return out


def _demo_records():
    from litdata.demo import DEMO_SOURCES
    from litdata.read import read_sources
    from litdata.records import Conversation

    convs = [c for c in read_sources(DEMO_SOURCES) if isinstance(c, Conversation)]
    return convs, [[(t.role, t.text) for t in c.turns] for c in convs]


def test_skipping_spacy_on_segments_without_anchors_changes_no_label():
    """The fast path (spaCy only on segments that contain a template piece or a lexicon phrase, what a segment
    gives remembered across batches) gives exactly the labels by definition, on the demo data with its mined
    templates, in one batch and in batches of three records, whose segments come back from the cache."""
    from litdata.config import MiningSettings
    from litdata.spans.mining import mine_templates

    convs, records = _demo_records()
    shapes = mine_templates(convs, MiningSettings()).template_shapes()
    for harmful in (HarmfulSettings(phrases=("circle", "blue square", "answer")), None):  # common words: many hits
        want = _reference_labels(shapes, harmful, records)
        assert TurnLabeler(template_shapes=shapes, harmful=harmful).label_many(records) == want
        labeler = TurnLabeler(template_shapes=shapes, harmful=harmful)
        assert [r for i in range(0, len(records), 3) for r in labeler.label_many(records[i : i + 3])] == want
        assert sum(len(t) for r in want for t in r) > 100


def test_a_template_without_a_literal_piece_is_looked_for_in_every_user_sentence():
    shapes = frozenset({"<num>.", "<box>", sentence_shape(SHORT)})
    records = [
        [(Role.USER, "12.\nWhat is it? [0.1, 0.2]"), (Role.ASSISTANT, "42.")],
        [(Role.USER, f"Count them.\n{SHORT}\n3.5."), (Role.ASSISTANT, SHORT)],
    ]
    harmful = HarmfulSettings(phrases=("count them",))
    for h in (harmful, None):
        got = TurnLabeler(template_shapes=shapes, harmful=h).label_many(records)
        assert got == _reference_labels(shapes, h, records)
        assert sum(len(t) for r in got for t in r) >= 3


def test_turns_holding_the_batch_separator_are_labelled_alike():
    """The anchor search joins a batch's turns with a control character; a turn holding it is searched alone."""
    text = f"What is \x00 this?\n{SHORT}"
    records = [[(Role.USER, text), (Role.ASSISTANT, "Nothing \x00 much")], [(Role.USER, SHORT)]]
    harmful = HarmfulSettings(phrases=("much",))
    got = TurnLabeler(template_shapes=TEMPLATES, harmful=harmful).label_many(records)
    assert got == _reference_labels(TEMPLATES, harmful, records)
    assert [[len(t) for t in r] for r in got] == [[1, 1], [1]]


def test_segments_without_inner_punctuation_skip_spacy_with_the_same_sentences():
    """The splitter skips spaCy for segments it cannot split; check against spaCy itself on tricky text and on
    every user-turn segment of the demo."""
    from litdata.demo import DEMO_SOURCES
    from litdata.read import read_sources
    from litdata.records import Conversation
    from litdata.spans.sentences import _unsplittable, make_nlp, segments

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


def test_labels_from_what_the_mining_pass_found_are_the_labels_by_definition():
    """Pass 2 takes a user segment's sentences and shapes from what mining found (memo.MINED) instead of
    splitting and shaping it again: the labels are those by definition, as with the memo empty."""
    from litdata.config import MiningSettings
    from litdata.spans.memo import MINED
    from litdata.spans.mining import mine_templates
    from litdata.spans.sentences import segments

    convs, records = _demo_records()
    shapes = mine_templates(convs, MiningSettings()).template_shapes()
    user = {t.text[a:b] for c in convs for t in c.turns if t.role is Role.USER for a, b in segments(t.text)}
    assert user and all(MINED.get(seg) is not None for seg in user)
    want = _reference_labels(shapes, None, records)
    assert sum(len(t) for r in want for t in r) > 100
    assert TurnLabeler(template_shapes=shapes, harmful=None).label_many(records) == want
    MINED.clear()
    assert TurnLabeler(template_shapes=shapes, harmful=None).label_many(records) == want


def test_a_segment_the_mining_pass_found_is_labelled_as_it_was_found():
    """The memo is what the labeller uses for a user segment: an entry (here a made-up one-sentence split) is
    not split again."""
    from litdata.spans.memo import MINED

    seg = "A fake one. Then stop"
    labeler = TurnLabeler(template_shapes=frozenset({"then stop"}), harmful=None)
    assert spans(seg, labeler.label([(Role.USER, seg)])[0]) == [("task_template", "Then stop")]  # two sentences
    MINED.clear()
    MINED.add({seg: ((0, len(seg), "then stop", None),)})
    try:
        labeler = TurnLabeler(template_shapes=frozenset({"then stop"}), harmful=None)
        assert spans(seg, labeler.label([(Role.USER, seg)])[0]) == [("task_template", seg)]
    finally:
        MINED.clear()
