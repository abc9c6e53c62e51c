"""The pieces a generated record is made of, and the task templates the generator plants in them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from benchmarks.world import lexicon
from benchmarks.world.scene import Scene, Shape


@dataclass(frozen=True, kw_only=True, slots=True)
class PlantedTemplate:
    name: str
    text: str  # the sentence, or for a parametric template its fixed prefix
    parametric: bool  # True: the prefix is followed by an argument (coordinates or a phrase) in the same sentence
    pattern: str  # a regex matching a whole sentence that uses the template
    sources: tuple[str, ...]


SINGLE_WORD = "Answer the question using a single word or phrase."
OPTION_LETTER = "Answer with the option's letter from the given choices directly."
CAPTION = "Provide a one-sentence caption for the provided image."
REGION_DESCRIPTION = "Please provide a short description for this region:"
REGION_BBOX = "Please provide the bounding box coordinate of the region this sentence describes:"

PLANTED_TEMPLATES: tuple[PlantedTemplate, ...] = (
    PlantedTemplate(
        name="single_word",
        text=SINGLE_WORD,
        parametric=False,
        pattern=r"^Answer the question using a single word or phrase\.$",
        sources=("vqav2", "gqa", "okvqa", "ocr_vqa"),
    ),
    PlantedTemplate(
        name="option_letter",
        text=OPTION_LETTER,
        parametric=False,
        pattern=r"^Answer with the option's letter from the given choices directly\.$",
        sources=("a_okvqa",),
    ),
    PlantedTemplate(
        name="caption",
        text=CAPTION,
        parametric=False,
        pattern=r"^Provide a one-sentence caption for the provided image\.$",
        sources=("textcaps",),
    ),
    PlantedTemplate(
        name="region_description",
        text=REGION_DESCRIPTION,
        parametric=True,
        pattern=r"^Please provide a short description for this region: \[\d\.\d\d, \d\.\d\d, \d\.\d\d, \d\.\d\d\]$",
        sources=("refcoco", "vg"),
    ),
    PlantedTemplate(
        name="region_bbox",
        text=REGION_BBOX,
        parametric=True,
        pattern=r"^Please provide the bounding box coordinate of the region this sentence describes: .+\.$",
        sources=("refcoco", "vg"),
    ),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    """One sentence-like unit of a human turn, and the separator written before it."""

    text: str
    template: str | None = None  # the PlantedTemplate name, or None for informative text
    join: str = ""
    argument: bool = False  # the coordinates or phrase completing a parametric template in the same sentence


@dataclass(frozen=True, kw_only=True, slots=True)
class QA:
    """What a question asks about the drawn scene, so a test can check the answer against the pixels."""

    kind: str  # color, shape, count, exists, position, relation, size, background, ...
    answer: str
    target: int | None = None  # index of the shape in scenes[image].shapes the question is about
    image: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Exchange:
    """One human turn and the assistant's reply."""

    segments: tuple[Segment, ...]
    answer: str
    qa: QA | None = None


def human_text(segments: tuple[Segment, ...]) -> str:
    return "".join(s.join + s.text for s in segments)


def box_text(scene: Scene, shape: Shape) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in scene.norm_box(shape)) + "]"


# --- referring to a shape ------------------------------------------------------------------------------------------
_REF_FORMS: tuple[tuple[str, ...], ...] = (
    ("kind", "loc"),
    ("color", "kind"),
    ("size", "color", "kind"),
    ("color", "kind", "loc"),
    ("size", "kind", "loc"),
    ("color", "loc"),
    ("size", "color", "kind", "loc"),
)


def _matches(s: Shape, t: Shape, attrs: tuple[str, ...]) -> bool:
    return all((s.cell == t.cell) if a == "loc" else getattr(s, a) == getattr(t, a) for a in attrs)


@lru_cache(maxsize=16384)
def _unique_forms(scene: Scene, shape: Shape) -> tuple[tuple[str, ...], ...]:
    return tuple(f for f in _REF_FORMS if sum(_matches(s, shape, f) for s in scene.shapes) == 1)


def refer(rng: random.Random, scene: Scene, shape: Shape, *, without: str = "") -> str:
    """A phrase that picks out `shape` uniquely in `scene` ("small red circle in the upper left"), never naming
    the attribute `without` (the one the question asks about)."""
    forms = [f for f in _unique_forms(scene, shape) if without not in f]
    form = rng.choice(forms)  # ("loc" + anything) is always unique: one shape per cell
    words: list[str] = []
    if "size" in form:
        words.append(rng.choice(lexicon.SIZE_WORDS[shape.size]))
    if "color" in form:
        words.append(shape.color)
    words.append(shape.kind if "kind" in form else rng.choice(("shape", "object", "figure")))
    if "loc" in form:
        words.append(rng.choice(lexicon.LOCATION_PHRASES[shape.position]))
    return " ".join(words)


def pic(rng: random.Random) -> str:
    return rng.choice(lexicon.PICTURE_WORDS)
