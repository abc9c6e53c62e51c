"""Short-answer sources of the LLaVA-1.5 mix: VQAv2, GQA, OK-VQA, OCR-VQA, A-OKVQA, TextCaps, RefCOCO, VG.

Every question is built from the drawn scene, so its answer is true of the picture.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from benchmarks.world import lexicon
from benchmarks.world.parts import (
    CAPTION,
    OPTION_LETTER,
    QA,
    REGION_BBOX,
    REGION_DESCRIPTION,
    SINGLE_WORD,
    Exchange,
    Segment,
    box_text,
    pic,
    refer,
)
from benchmarks.world.scene import COLORS, SHAPES, SIDES, SIZES, Scene, Shape

Question = tuple[str, QA]
Asker = Callable[[random.Random, Scene], "Question | None"]


def _pick(rng: random.Random, scene: Scene) -> tuple[int, Shape]:
    i = rng.randrange(len(scene.shapes))
    return i, scene.shapes[i]


def ask_color(rng: random.Random, scene: Scene) -> Question:
    i, s = _pick(rng, scene)
    r = refer(rng, scene, s, without="color")
    q = rng.choice(
        (
            f"What color is the {r}?",
            f"Which color does the {r} have?",
            f"What is the color of the {r} in this {pic(rng)}?",
            f"What color has been used for the {r}?",
        )
    )
    return q, QA(kind="color", answer=s.color, target=i)


def ask_shape(rng: random.Random, scene: Scene) -> Question:
    i, s = _pick(rng, scene)
    r = refer(rng, scene, s, without="kind")
    q = rng.choice(
        (
            f"What shape is the {r}?",
            f"Which shape is the {r} in the {pic(rng)}?",
            f"What kind of shape is the {r}?",
            f"What geometric form does the {r} have?",
        )
    )
    return q, QA(kind="shape", answer=s.kind, target=i)


_REGIONS = (
    ("in the top row", lambda s: s.cell[1] == 0),
    ("in the middle row", lambda s: s.cell[1] == 1),
    ("in the bottom row", lambda s: s.cell[1] == 2),
    ("on the left side", lambda s: s.cell[0] == 0),
    ("on the right side", lambda s: s.cell[0] == 2),
    ("in the middle column", lambda s: s.cell[0] == 1),
)


def ask_count(rng: random.Random, scene: Scene) -> Question:
    if rng.random() < 0.5:
        color = rng.choice([s.color for s in scene.shapes] + list(COLORS)[:3])
        subset, what = scene.find(color=color), f"{color} shapes"
    else:
        kind = rng.choice([s.kind for s in scene.shapes] + list(SHAPES)[:3])
        subset, what = scene.find(kind=kind), f"{kind}s"
    if rng.random() < 0.5:
        region, inside = rng.choice(_REGIONS)
        subset = [s for s in subset if inside(s)]
    else:
        region = rng.choice(("in the", "in this", "visible in the", "drawn in the")) + " " + pic(rng)
    q = rng.choice(
        (
            f"How many {what} are {region}?",
            f"How many {what} can you count {region}?",
            f"What is the number of {what} {region}?",
        )
    )
    return q, QA(kind="count", answer=str(len(subset)))


def ask_exists(rng: random.Random, scene: Scene) -> Question:
    if rng.random() < 0.5:
        _, s = _pick(rng, scene)
        color, kind, answer = s.color, s.kind, "Yes"
    else:
        color, kind = rng.choice(list(COLORS)), rng.choice(SHAPES)
        answer = "Yes" if scene.find(color=color, kind=kind) else "No"
    q = rng.choice(
        (
            f"Is there a {color} {kind} in the {pic(rng)}?",
            f"Does this {pic(rng)} contain a {color} {kind}?",
            f"Can you see a {color} {kind} anywhere in the {pic(rng)}?",
            f"Is a {color} {kind} drawn here?",
        )
    )
    return q, QA(kind="exists", answer=answer)


def ask_position(rng: random.Random, scene: Scene) -> Question:
    i, s = _pick(rng, scene)
    r = refer(rng, scene, s, without="loc")
    q = rng.choice(
        (
            f"Where is the {r} located?",
            f"In which part of the {pic(rng)} is the {r}?",
            f"Where in the {pic(rng)} can you find the {r}?",
            f"Which region of the {pic(rng)} holds the {r}?",
        )
    )
    return q, QA(kind="position", answer=s.position, target=i)


_RELATIONS = (
    ("to the left of", lambda a, b: a.cell[0] < b.cell[0]),
    ("to the right of", lambda a, b: a.cell[0] > b.cell[0]),
    ("above", lambda a, b: a.cell[1] < b.cell[1]),
    ("below", lambda a, b: a.cell[1] > b.cell[1]),
)


def ask_relation(rng: random.Random, scene: Scene) -> Question | None:
    if len(scene.shapes) < 2:
        return None
    a, b = rng.sample(scene.shapes, 2)
    rel, holds = rng.choice(_RELATIONS)
    q = f"Is the {refer(rng, scene, a)} {rel} the {refer(rng, scene, b)}?"
    return q, QA(kind="relation", answer="Yes" if holds(a, b) else "No")


def _area(s: Shape) -> int:
    return (s.box[2] - s.box[0] + 1) * (s.box[3] - s.box[1] + 1)


def ask_size(rng: random.Random, scene: Scene) -> Question | None:
    pairs = [(a, b) for a in scene.shapes for b in scene.shapes if a.size != b.size]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    word = rng.choice(("bigger than", "larger than", "smaller than"))
    bigger = SIZES.index(a.size) > SIZES.index(b.size)
    answer = "Yes" if bigger == (word != "smaller than") else "No"
    return f"Is the {refer(rng, scene, a)} {word} the {refer(rng, scene, b)}?", QA(kind="size", answer=answer)


def ask_background(rng: random.Random, scene: Scene) -> Question:
    _, s = _pick(rng, scene)
    r = refer(rng, scene, s)
    q = rng.choice((f"What color is the background behind the {r}?", f"What is the background color around the {r}?"))
    return q, QA(kind="background", answer=scene.background)


def ask_relative_lookup(rng: random.Random, scene: Scene) -> Question | None:
    """GQA style: "What color is the circle to the left of the blue star?" (only when the answer is unique)."""
    rel, holds = rng.choice(_RELATIONS)
    options = []
    for b in scene.shapes:
        for i, a in enumerate(scene.shapes):
            if a is not b and holds(a, b) and sum(holds(x, b) and x.kind == a.kind for x in scene.shapes) == 1:
                options.append((i, a, b))
    if not options:
        return None
    i, a, b = rng.choice(options)
    if rng.random() < 0.5:
        q = f"What color is the {a.kind} that is {rel} the {refer(rng, scene, b)}?"
        return q, QA(kind="color", answer=a.color, target=i)
    q = f"Which color does the {a.kind} {rel} the {refer(rng, scene, b)} have?"
    return q, QA(kind="color", answer=a.color, target=i)


def ask_same_color(rng: random.Random, scene: Scene) -> Question | None:
    if len(scene.shapes) < 2:
        return None
    a, b = rng.sample(scene.shapes, 2)
    q = f"Do the {refer(rng, scene, a, without='color')} and the {refer(rng, scene, b, without='color')} have the same color?"
    return q, QA(kind="same_color", answer="Yes" if a.color == b.color else "No")


def ask_knowledge(rng: random.Random, scene: Scene) -> Question:
    """OK-VQA style: outside knowledge about what is drawn."""
    i, s = _pick(rng, scene)
    if s.kind in SIDES and rng.random() < 0.5:
        r = refer(rng, scene, s)
        return rng.choice((f"How many corners does the {r} have?", f"How many sides does the {r} have?")), QA(
            kind="sides", answer=str(SIDES[s.kind]), target=i
        )
    r = refer(rng, scene, s, without="color")
    q = rng.choice(
        (
            f"What is something in nature that shares the color of the {r}?",
            f"Which thing from nature usually has the same color as the {r}?",
        )
    )
    return q, QA(kind="knowledge", answer=lexicon.NATURE_BY_COLOR[s.color], target=i)


def ask_book(rng: random.Random, scene: Scene) -> Question:
    emblem = scene.shapes[0]
    look = f"{emblem.color} {emblem.kind}"
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(
            (
                f"Who wrote the book with the {look} on its {scene.background} cover?",
                f"Whose name is printed under the {look} on this {scene.background} book?",
            )
        ), QA(kind="author", answer=scene.author)
    if choice == 1:
        return rng.choice(
            (
                f"What is the title of the {scene.background} book showing a {look}?",
                f"What title is printed above the {look} on this cover?",
            )
        ), QA(kind="title", answer=scene.text)
    if choice == 2:
        genre = rng.choice((scene.genre, rng.choice(lexicon.GENRES)))
        q = f"Is the book titled {scene.text} a {genre} book?"
        return q, QA(kind="genre_check", answer="Yes" if genre == scene.genre else "No")
    if choice == 3:
        return rng.choice(
            (
                f"What genre is the book written by {scene.author}?",
                f"What kind of book did {scene.author} write, judging by the cover?",
            )
        ), QA(kind="genre", answer=scene.genre)
    if choice == 4:
        return rng.choice(
            (
                f"What color is the cover of {scene.text}?",
                f"Which color is used for the cover of {scene.text} by {scene.author}?",
            )
        ), QA(kind="cover", answer=scene.background)
    return rng.choice(
        (
            f"Who is the author of {scene.text}?",
            f"Who wrote {scene.text}?",
            f"Who is credited as the author of {scene.text}?",
            f"Which author's name appears on {scene.text}?",
        )
    ), QA(kind="author", answer=scene.author)


VQAV2_ASKERS: tuple[Asker, ...] = (
    ask_color,
    ask_shape,
    ask_count,
    ask_exists,
    ask_position,
    ask_relation,
    ask_size,
    ask_background,
)
GQA_ASKERS: tuple[Asker, ...] = (
    ask_relative_lookup,
    ask_relative_lookup,
    ask_same_color,
    ask_relation,
    ask_color,
    ask_shape,
)
OKVQA_ASKERS: tuple[Asker, ...] = (ask_knowledge,)
OCR_ASKERS: tuple[Asker, ...] = (ask_book,)


def short_answer_rounds(rng: random.Random, scene: Scene, askers: tuple[Asker, ...], max_rounds: int) -> list[Exchange]:
    """VQA-style multi-turn record: each question followed by the single-word template."""
    rounds: list[Exchange] = []
    seen: set[str] = set()
    for _ in range(rng.randint(1, max_rounds) * 3):  # retries for askers that do not apply to this scene
        if len(rounds) == max_rounds or (rounds and rng.random() < 0.22):
            break
        got = rng.choice(askers)(rng, scene)
        if got is None or got[0] in seen:
            continue
        seen.add(got[0])
        q, qa = got
        segs = (Segment(text=q), Segment(text=SINGLE_WORD, template="single_word", join="\n"))
        rounds.append(Exchange(segments=segs, answer=qa.answer, qa=qa))
    if not rounds:
        q, qa = ask_color(rng, scene) if scene.style != "book" else ask_book(rng, scene)
        rounds.append(
            Exchange(
                segments=(Segment(text=q), Segment(text=SINGLE_WORD, template="single_word", join="\n")),
                answer=qa.answer,
                qa=qa,
            )
        )
    return rounds


def multiple_choice_rounds(rng: random.Random, scene: Scene) -> list[Exchange]:
    """A-OKVQA: a question, four object options (never single words, so no option line is frequent), the letter."""
    rounds: list[Exchange] = []
    for i in rng.sample(range(len(scene.shapes)), min(len(scene.shapes), rng.randint(1, 3))):
        s = scene.shapes[i]
        loc = rng.choice(lexicon.LOCATION_PHRASES[s.position])
        q = rng.choice(
            (
                f"Which of these objects is {loc} of the {pic(rng)}?",
                f"Which of the following can be seen {loc} of this {pic(rng)}?",
                f"What is drawn {loc} in this {pic(rng)}?",
            )
        )
        correct = f"{rng.choice(lexicon.SIZE_WORDS[s.size])} {s.color} {s.kind}"
        options = [correct]
        while len(options) < 4:
            o = f"{rng.choice(lexicon.SIZE_WORDS[rng.choice(SIZES)])} {rng.choice(list(COLORS))} {rng.choice(SHAPES)}"
            if o.split(" ", 1)[1] != f"{s.color} {s.kind}" and o not in options:
                options.append(o)
        rng.shuffle(options)
        letter = "ABCD"[options.index(correct)]
        segs = [Segment(text=q)]
        segs += [Segment(text=f"{'ABCD'[k]}. {o}", join="\n") for k, o in enumerate(options)]
        segs.append(Segment(text=OPTION_LETTER, template="option_letter", join="\n"))
        rounds.append(Exchange(segments=tuple(segs), answer=letter, qa=QA(kind="choice", answer=letter, target=i)))
    return rounds


def caption_rounds(rng: random.Random, scene: Scene) -> list[Exchange]:
    s = rng.choice(scene.shapes)
    caption = rng.choice(
        (
            f'A white sign that reads "{scene.text}" sits below a {s.color} {s.kind}.',
            f'A {s.size} {s.color} {s.kind} is drawn above a sign saying "{scene.text}".',
            f'The word "{scene.text}" is written on a sign under a {s.color} {s.kind}.',
        )
    )
    return [
        Exchange(
            segments=(Segment(text=CAPTION, template="caption"),),
            answer=caption,
            qa=QA(kind="caption", answer=scene.text),
        )
    ]


def region_rounds(rng: random.Random, scene: Scene, describe_share: float) -> list[Exchange]:
    """RefCOCO / VG: region description from coordinates, or coordinates from a referring expression."""
    rounds: list[Exchange] = []
    for i in rng.sample(range(len(scene.shapes)), min(len(scene.shapes), rng.randint(1, 4))):
        s = scene.shapes[i]
        box = box_text(scene, s)
        if rng.random() < describe_share:
            segs = (
                Segment(text=REGION_DESCRIPTION, template="region_description"),
                Segment(text=box, join=" ", argument=True),
            )
            answer = refer(rng, scene, s).capitalize() + "."
            rounds.append(
                Exchange(segments=segs, answer=answer, qa=QA(kind="region_description", answer=answer, target=i))
            )
        else:
            expr = refer(rng, scene, s) + "."
            segs = (Segment(text=REGION_BBOX, template="region_bbox"), Segment(text=expr, join=" ", argument=True))
            rounds.append(Exchange(segments=segs, answer=box, qa=QA(kind="region_bbox", answer=box, target=i)))
    return rounds
