"""Long-form sources of the LLaVA-1.5 mix: LLaVA-158K (conversation, detail, complex reasoning) and ShareGPT."""

from __future__ import annotations

import random

from benchmarks.world import lexicon
from benchmarks.world.parts import QA, Exchange, Segment, pic, refer
from benchmarks.world.scene import Scene, Shape


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _describe_shape(rng: random.Random, s: Shape) -> str:
    loc = rng.choice(lexicon.LOCATION_PHRASES[s.position])
    return rng.choice(
        (
            f"There is {_a(s.size)} {s.color} {s.kind} {loc}.",
            f"{_a(s.size).capitalize()} {s.color} {s.kind} sits {loc}.",
            f"{loc.capitalize()}, you can see {_a(s.size)} {s.color} {s.kind}.",
        )
    )


def _relation(a: Shape, b: Shape) -> str:
    parts = []
    if a.cell[0] != b.cell[0]:
        parts.append("to the left of" if a.cell[0] < b.cell[0] else "to the right of")
    if a.cell[1] != b.cell[1]:
        parts.append("above" if a.cell[1] < b.cell[1] else "below")
    return " and ".join(parts)


def conversation_rounds(rng: random.Random, scene: Scene) -> list[Exchange]:
    rounds: list[Exchange] = []
    for _ in range(rng.randint(2, 5)):
        i = rng.randrange(len(scene.shapes))
        s = scene.shapes[i]
        r = refer(rng, scene, s)
        kind = rng.randrange(4)
        if kind == 1 and len(scene.shapes) > 1:
            j = rng.choice([k for k in range(len(scene.shapes)) if k != i])
            o = scene.shapes[j]
            q = rng.choice(
                (
                    f"How is the {r} positioned relative to the {refer(rng, scene, o)}?",
                    f"Where does the {r} sit compared with the {refer(rng, scene, o)}?",
                )
            )
            a = f"The {s.color} {s.kind} is {_relation(s, o)} the {o.color} {o.kind}."
        elif kind == 2:
            same = [x for x in scene.shapes if x.color == s.color and x is not s]
            q = f"Are there any other {pic(rng)} elements with the same color as the {refer(rng, scene, s, without='color')}?"
            a = (
                f"Yes, the {', '.join(x.kind for x in same)} {'is' if len(same) == 1 else 'are'} also {s.color}."
                if same
                else f"No, the {s.kind} is the only {s.color} shape in the {pic(rng)}."
            )
        elif kind == 3:
            rest = [x for x in scene.shapes if x is not s]
            q = f"If the {r} were erased, what would be left in the {pic(rng)}?"
            a = (
                "Only the " + pic(rng) + " background would remain."
                if not rest
                else "The remaining shapes would be " + ", ".join(f"the {x.color} {x.kind}" for x in rest) + "."
            )
        else:
            q = rng.choice(
                (f"What can you tell me about the {r} in this {pic(rng)}?", f"Could you describe the {r} for me?")
            )
            a = f"It is {_a(s.size)} {s.color} {s.kind} placed in the {s.position} part of the {pic(rng)}."
        rounds.append(Exchange(segments=(Segment(text=q),), answer=a, qa=QA(kind="conversation", answer=a, target=i)))
    return rounds


def detail_rounds(rng: random.Random, scene: Scene, ordinal: int, order: list[int]) -> list[Exchange]:
    """A detail prompt (chosen round-robin within a block so that each variant stays rare) and ~100 words."""
    prompt = lexicon.DETAIL_PROMPTS[order[ordinal % len(order)]]
    return [
        Exchange(segments=(Segment(text=prompt),), answer=describe_scene(rng, scene), qa=QA(kind="detail", answer=""))
    ]


def describe_scene(rng: random.Random, scene: Scene) -> str:
    n = len(scene.shapes)
    sents = [
        f"The {pic(rng)} shows {n} simple flat {'shape' if n == 1 else 'shapes'} drawn on a {scene.background} background."
    ]
    sents += [_describe_shape(rng, s) for s in scene.shapes]
    if n > 1:
        a, b = rng.sample(scene.shapes, 2)
        sents.append(
            f"The {a.color} {a.kind} is {_relation(a, b)} the {b.color} {b.kind}, which gives the layout a clear direction."
        )
    colors = sorted({s.color for s in scene.shapes})
    sents.append(
        f"The palette is limited to {', '.join(colors)}, so every element stands out against the plain background."
    )
    sents.append(
        "There is no text, no shading and no perspective, which makes the composition look like a diagram or a "
        "page from a children's shape book rather than a photograph."
    )
    sents.append("The edges are crisp and the shapes do not overlap, so each one can be counted and located easily.")
    return " ".join(sents)


def complex_rounds(rng: random.Random, scene: Scene) -> list[Exchange]:
    s = rng.choice(scene.shapes)
    r = refer(rng, scene, s)
    others = [x for x in scene.shapes if x is not s]
    segs: list[Segment] = []
    if others and rng.random() < 0.5:
        o = rng.choice(others)
        segs.append(Segment(text=f"The {r} and the {refer(rng, scene, o)} appear together in this {pic(rng)}."))
        rel = _relation(s, o)
        a_, b_ = f"{s.color} {s.kind}", f"{o.color} {o.kind}"
        segs.append(
            Segment(
                text=rng.choice(
                    (
                        f"What might a designer have intended by putting the {a_} {rel} the {b_}?",
                        f"Why might the {a_} have been drawn {rel} the {b_}?",
                        f"What does placing the {a_} {rel} the {b_} suggest?",
                        f"Why would an artist put the {a_} {rel} the {b_}?",
                    )
                ),
                join=" ",
            )
        )
    else:
        segs.append(
            Segment(
                text=rng.choice(
                    (
                        f"What could the {r} stand for if this {pic(rng)} were a map legend?",
                        f"Why might someone pick the {r} as the focal point of this {pic(rng)}?",
                    )
                )
            )
        )
    answer = (
        f"The {s.color} {s.kind} is placed in the {s.position} part of the {pic(rng)}, and its {s.size} size "
        f"makes it {'dominant' if s.size == 'large' else 'a quiet accent'}. A designer might use a {s.color} "
        f"{s.kind} to mark something important, because the color contrasts with the {scene.background} "
        f"background and the shape is easy to recognise at a glance. "
        + (
            f"Its relation to the {others[0].color} {others[0].kind} suggests an order of reading from "
            f"{'left to right' if s.cell[0] <= others[0].cell[0] else 'right to left'}, "
            "which is how viewers usually scan a layout. "
            if others
            else "As the only element, it carries the whole message of the picture, much like a single icon on a sign. "
        )
        + "Without more context the exact meaning stays open, but the visual cues point to emphasis and grouping."
    )
    return [Exchange(segments=tuple(segs), answer=answer, qa=QA(kind="complex", answer=""))]


def multi_image_rounds(rng: random.Random, first: Scene, second: Scene) -> list[Exchange]:
    """Two pictures in one record: questions that need both."""
    only_first = [s for s in first.shapes if not second.find(kind=s.kind, color=s.color)]
    only_second = [s for s in second.shapes if not first.find(kind=s.kind, color=s.color)]
    rounds: list[Exchange] = []
    if only_first or only_second:
        which, s = (
            ("first", rng.choice(only_first))
            if only_first and (not only_second or rng.random() < 0.5)
            else ("second", rng.choice(only_second))
        )
        q = f"Which of the two {pic(rng)}s contains the {s.color} {s.kind}?"
        rounds.append(
            Exchange(segments=(Segment(text=q),), answer=f"The {which} one.", qa=QA(kind="which_image", answer=which))
        )
    kind = rng.choice([s.kind for s in first.shapes + second.shapes])
    both = bool(first.find(kind=kind)) and bool(second.find(kind=kind))
    q = f"Do both {pic(rng)}s show a {kind}, and what colors are they?"
    colors = ", ".join(sorted({s.color for s in first.shapes + second.shapes if s.kind == kind}))
    a = f"{'Yes' if both else 'No'}, the {kind} colors are: {colors}."
    rounds.append(
        Exchange(segments=(Segment(text=q),), answer=a, qa=QA(kind="both_images", answer="Yes" if both else "No"))
    )
    return rounds


def long_answer(rng: random.Random, topic: str, audience: str, words: int) -> str:
    """Paragraphs of plausible prose about `topic`, about `words` long."""
    paragraphs: list[str] = []
    total = 0
    while total < words:
        sents = []
        for _ in range(rng.randint(3, 6)):
            w, w2 = rng.sample(lexicon.FILLER_NOUNS, 2)
            s = rng.choice(lexicon.ANSWER_FRAMES).format(
                t=topic, a=audience, w=w, w2=w2, v=rng.choice(lexicon.FILLER_VERBS)
            )
            sents.append(s[0].upper() + s[1:])
            total += s.count(" ") + 1
        paragraphs.append(" ".join(sents))
    return "\n\n".join(paragraphs)


def sharegpt_rounds(
    rng: random.Random, *, answer_words: tuple[int, int] = (150, 450), budget: int = 1000
) -> list[Exchange]:
    """Text-only multi-turn chat with long answers; total answer words stay under `budget` so that a normal
    record fits seq_len 2048 (only the demo's planted too-long record may overflow)."""
    topic, audience = rng.choice(lexicon.TOPICS), rng.choice(lexicon.AUDIENCES)
    first = f"{rng.choice(lexicon.CONTEXTS).capitalize()}, so could you {rng.choice(lexicon.ASK_VERBS)} {topic} for {audience}?"
    words = rng.randint(*answer_words)
    rounds = [Exchange(segments=(Segment(text=first),), answer=long_answer(rng, topic, audience, words))]
    for _ in range(rng.randint(0, 3)):
        more = rng.randint(*answer_words)
        if words + more > budget:
            break
        words += more
        sub, aud = rng.choice(lexicon.TOPICS), rng.choice(lexicon.AUDIENCES)
        q = rng.choice(lexicon.FOLLOW_UPS).format(
            adj=rng.choice(lexicon.STYLE_ADJECTIVES), n=rng.randint(2, 5), topic=sub, audience=aud
        )
        rounds.append(Exchange(segments=(Segment(text=q),), answer=long_answer(rng, sub, aud, more)))
    return rounds
