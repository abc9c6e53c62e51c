"""Small drawn pictures (coloured shapes on a 3x3 grid) and the metadata that the generated text talks about.

A scene is a pure function of its random generator, so a record can name an image by key and the text about
it can be checked against the metadata, or against the pixels, without storing anything per record.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

# Well separated colours, so a pixel check of the JPEG-compressed image still tells them apart.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 150, 50),
    "blue": (30, 70, 220),
    "yellow": (240, 210, 20),
    "orange": (245, 130, 20),
    "purple": (130, 40, 170),
    "pink": (245, 120, 190),
    "brown": (120, 70, 25),
    "black": (20, 20, 20),
    "gray": (125, 125, 125),
    "cyan": (20, 200, 215),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250),
    "cream": (250, 238, 210),
    "pale blue": (212, 228, 250),
    "pale green": (218, 245, 218),
    "light gray": (222, 222, 222),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon", "pentagon", "rectangle", "ellipse", "cross")
SIZES = ("small", "medium", "large")
_SIZE_FRACTION = {"small": 0.45, "medium": 0.7, "large": 0.95}
# (column, row) of the 3x3 grid -> the position word used in questions and answers.
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "top left",
    (1, 0): "top",
    (2, 0): "top right",
    (0, 1): "left",
    (1, 1): "center",
    (2, 1): "right",
    (0, 2): "bottom left",
    (1, 2): "bottom",
    (2, 2): "bottom right",
}
SIDES = {"triangle": 3, "square": 4, "diamond": 4, "rectangle": 4, "pentagon": 5, "hexagon": 6, "cross": 12}
SHAPE_CANVASES = ((64, 64), (96, 64), (96, 96), (128, 96), (128, 64))
SIGN_CANVAS = (128, 96)
BOOK_CANVAS = (96, 128)


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    kind: str
    color: str
    size: str
    cell: tuple[int, int]  # (column, row) in the 3x3 grid
    box: tuple[int, int, int, int]  # pixel bounding box x0, y0, x1, y1 (inclusive)

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    @property
    def center(self) -> tuple[int, int]:
        return ((self.box[0] + self.box[2]) // 2, (self.box[1] + self.box[3]) // 2)


@dataclass(frozen=True, kw_only=True, slots=True)
class Scene:
    style: str  # "shapes", "sign" (a shape scene with a text sign in the bottom row) or "book" (a book cover)
    width: int
    height: int
    background: str  # a BACKGROUNDS name, or for books a COLORS name (the cover colour)
    shapes: tuple[Shape, ...]
    text: str = ""  # the sign's word or the book's title
    author: str = ""
    genre: str = ""

    def norm_box(self, shape: Shape) -> list[float]:
        """The shape's box as LLaVA writes region coordinates: fractions of width/height, 2 decimals."""
        x0, y0, x1, y1 = shape.box
        return [
            round(x0 / self.width, 2),
            round(y0 / self.height, 2),
            round(x1 / self.width, 2),
            round(y1 / self.height, 2),
        ]

    def find(self, *, kind: str | None = None, color: str | None = None, size: str | None = None) -> list[Shape]:
        return [
            s
            for s in self.shapes
            if (kind is None or s.kind == kind)
            and (color is None or s.color == color)
            and (size is None or s.size == size)
        ]


def make_scene(rng: random.Random, style: str) -> Scene:
    """Draw a random scene description: 1-5 shapes in distinct cells, each (colour, kind) pair used once."""
    if style == "book":
        width, height = BOOK_CANVAS
    elif style == "sign":
        width, height = SIGN_CANVAS
    else:
        width, height = rng.choice(SHAPE_CANVASES)
    rows = (0, 1) if style == "sign" else (0, 1, 2)  # the sign takes the bottom row
    cells = [(c, r) for r in rows for c in range(3)]
    if style == "book":
        cells = [(1, 1)]  # one emblem in the middle of the cover
    n = 1 if style == "book" else rng.randint(1, min(5, len(cells)))
    chosen = rng.sample(cells, n)
    cw, ch = width / 3, height / 3
    shapes: list[Shape] = []
    pairs: set[tuple[str, str]] = set()
    for cell in sorted(chosen, key=lambda c: (c[1], c[0])):
        while True:
            kind, color = rng.choice(SHAPES), rng.choice(list(COLORS))
            if (kind, color) not in pairs:
                break
        pairs.add((kind, color))
        size = rng.choice(SIZES)
        side = max(6, int(min(cw, ch) * _SIZE_FRACTION[size]))
        w = side if kind not in ("rectangle", "ellipse") else min(int(cw) - 1, int(side * 1.5))
        h = side if kind not in ("rectangle", "ellipse") else max(4, int(side * 0.6))
        x0 = int(cell[0] * cw + rng.uniform(0, max(0.0, cw - w - 1)))
        y0 = int(cell[1] * ch + rng.uniform(0, max(0.0, ch - h - 1)))
        shapes.append(Shape(kind=kind, color=color, size=size, cell=cell, box=(x0, y0, x0 + w - 1, y0 + h - 1)))
    if style == "book":
        from benchmarks.world import lexicon

        cover = rng.choice([c for c in COLORS if c not in {s.color for s in shapes}])
        title = f"{rng.choice(lexicon.TITLE_ADJECTIVES)} {rng.choice(lexicon.TITLE_NOUNS)}"
        author = f"{rng.choice(lexicon.FIRST_NAMES)} {rng.choice(lexicon.LAST_NAMES)}"
        return Scene(
            style=style,
            width=width,
            height=height,
            background=cover,
            shapes=tuple(shapes),
            text=title,
            author=author,
            genre=rng.choice(lexicon.GENRES),
        )
    background = rng.choice(list(BACKGROUNDS))
    text = ""
    if style == "sign":
        from benchmarks.world import lexicon

        text = rng.choice(lexicon.SIGN_WORDS)
    return Scene(style=style, width=width, height=height, background=background, shapes=tuple(shapes), text=text)


def _polygon(kind: str, box: tuple[int, int, int, int]) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if kind == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if kind == "diamond":
        return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    if kind in ("hexagon", "pentagon"):
        k = 6 if kind == "hexagon" else 5
        return [(cx + rx * math.sin(2 * math.pi * i / k), cy - ry * math.cos(2 * math.pi * i / k)) for i in range(k)]
    if kind == "star":
        pts = []
        for i in range(10):
            r = 1.0 if i % 2 == 0 else 0.45
            a = math.pi * i / 5
            pts.append((cx + rx * r * math.sin(a), cy - ry * r * math.cos(a)))
        return pts
    if kind == "cross":
        tx, ty = rx / 3, ry / 3
        return [
            (cx - tx, y0),
            (cx + tx, y0),
            (cx + tx, cy - ty),
            (x1, cy - ty),
            (x1, cy + ty),
            (cx + tx, cy + ty),
            (cx + tx, y1),
            (cx - tx, y1),
            (cx - tx, cy + ty),
            (x0, cy + ty),
            (x0, cy - ty),
            (cx - tx, cy - ty),
        ]
    raise ValueError(f"no polygon for shape {kind!r}")


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=10)


def draw_scene(scene: Scene) -> Image.Image:
    palette = COLORS if scene.style == "book" else BACKGROUNDS
    img = Image.new("RGB", (scene.width, scene.height), palette[scene.background])
    d = ImageDraw.Draw(img)
    for s in scene.shapes:
        fill = COLORS[s.color]
        if s.kind in ("circle", "ellipse"):
            d.ellipse(s.box, fill=fill)
        elif s.kind in ("square", "rectangle"):
            d.rectangle(s.box, fill=fill)
        else:
            d.polygon(_polygon(s.kind, s.box), fill=fill)
    if scene.style == "sign":
        top = scene.height * 2 // 3 + 4
        d.rectangle((8, top, scene.width - 9, scene.height - 5), fill=(250, 250, 250), outline=(20, 20, 20))
        d.text(
            (scene.width // 2, (top + scene.height - 5) // 2), scene.text, fill=(20, 20, 20), font=_font(), anchor="mm"
        )
    elif scene.style == "book":
        ink = (250, 250, 250) if scene.background not in ("yellow", "cyan", "pink", "orange") else (20, 20, 20)
        d.text((scene.width // 2, 3), scene.genre.upper(), fill=ink, font=_font(), anchor="mt")
        for i, word in enumerate(scene.text.split()):
            d.text((scene.width // 2, 15 + 11 * i), word, fill=ink, font=_font(), anchor="mt")
        d.text((scene.width // 2, scene.height - 6), scene.author, fill=ink, font=_font(), anchor="mb")
    return img


def encode_image(scene: Scene, fmt: str) -> bytes:
    """PNG or JPEG bytes; fixed encoder settings so that reruns write identical files."""
    buf = io.BytesIO()
    img = draw_scene(scene)
    if fmt == "png":
        img.save(buf, format="PNG", optimize=True)
    else:
        img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()
