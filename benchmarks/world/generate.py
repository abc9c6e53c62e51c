"""Deterministic generator of LLaVA-665K-shaped records about small drawn pictures.

Records come in blocks of 664 (the thousands of LLaVA-1.5's mix, paper Table 7) holding each source exactly
its share, shuffled within the block, so proportions are exact at scale and any record can be made on its own
from (seed, index): generation streams and needs no state.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from benchmarks.world import chat_sources, lexicon, vqa_sources
from benchmarks.world.parts import PLANTED_TEMPLATES, QA, Exchange, Segment, human_text
from benchmarks.world.scene import Scene, make_scene

__all__ = [
    "PLANTED_TEMPLATES",
    "SOURCES",
    "GeneratedRecord",
    "ImagePool",
    "generate_records",
    "ground_truth",
    "record_at",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceSpec:
    name: str
    per_block: int  # records per block of BLOCK, i.e. thousands of records in LLaVA-665K
    family: str | None  # which image pool the source draws from (None: text-only)


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(name="vqav2", per_block=83, family="coco"),
    SourceSpec(name="gqa", per_block=72, family="gqa"),
    SourceSpec(name="okvqa", per_block=9, family="coco"),
    SourceSpec(name="ocr_vqa", per_block=80, family="ocr_vqa"),
    SourceSpec(name="a_okvqa", per_block=66, family="coco"),
    SourceSpec(name="textcaps", per_block=22, family="textvqa"),
    SourceSpec(name="refcoco", per_block=48, family="coco"),
    SourceSpec(name="vg", per_block=86, family="vg"),
    SourceSpec(name="llava_conv", per_block=58, family="coco"),
    SourceSpec(name="llava_detail", per_block=23, family="coco"),
    SourceSpec(name="llava_complex", per_block=77, family="coco"),
    SourceSpec(name="sharegpt", per_block=40, family=None),
)
BLOCK = sum(s.per_block for s in SOURCES)  # 664
MULTI_IMAGE_PER_BLOCK = 7  # this many llava_conv records per block compare two pictures (~1% of all records)
# family -> (scene style, file extension); COCO-like pools are shared by several sources, as in LLaVA.
FAMILIES: dict[str, tuple[str, str]] = {
    "coco": ("shapes", "png"),
    "gqa": ("shapes", "jpg"),
    "ocr_vqa": ("book", "png"),
    "textvqa": ("sign", "jpg"),
    "vg": ("shapes", "jpg"),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class GeneratedRecord:
    index: int
    source: str
    record: dict  # the LLaVA-1.5 JSON object
    human_segments: tuple[tuple[Segment, ...], ...]  # per human turn: its sentences, templates marked
    qa: tuple[QA | None, ...]  # per round: what the question asks of the scene
    scenes: tuple[Scene, ...]  # the drawn pictures, in the order of record["image"]


class ImagePool:
    """A fixed set of distinct pictures per family, shared by the records (like COCO images in LLaVA)."""

    def __init__(self, total: int, seed: int) -> None:
        uses: Counter[str] = Counter()
        for s in SOURCES:
            if s.family:
                uses[s.family] += s.per_block
        uses["ocr_vqa"] *= 3  # a book's questions follow from its cover, so books are shared less than photos
        all_uses = sum(uses.values())
        self.seed = seed
        self.sizes = {f: max(2, round(total * uses[f] / all_uses)) for f in FAMILIES}
        self._scene = lru_cache(maxsize=8192)(self._make_scene)

    def path(self, family: str, j: int) -> str:
        return f"{family}/{j:06d}.{FAMILIES[family][1]}"

    def scene(self, family: str, j: int) -> Scene:
        return self._scene(family, j)

    def _make_scene(self, family: str, j: int) -> Scene:
        return make_scene(random.Random(f"litdata-demo-image:{self.seed}:{family}:{j}"), FAMILIES[family][0])

    def all_images(self) -> Iterator[tuple[str, Scene, str]]:
        """(relative path, scene, format) for every picture of the pool."""
        for family, n in self.sizes.items():
            for j in range(n):
                yield self.path(family, j), self.scene(family, j), FAMILIES[family][1]


@lru_cache(maxsize=4)
def _block_order(seed: int, block: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """The shuffled (source index, ordinal within its source) of each position, and the detail-prompt order."""
    rng = random.Random(f"litdata-demo-block:{seed}:{block}")
    slots = [(k, o) for k, s in enumerate(SOURCES) for o in range(s.per_block)]
    rng.shuffle(slots)
    detail_order = list(range(len(lexicon.DETAIL_PROMPTS)))
    rng.shuffle(detail_order)
    return tuple(slots), tuple(detail_order)


def default_pool_size(n: int) -> int:
    return min(2000, max(60, n // 2))


def record_at(index: int, seed: int, pool: ImagePool) -> GeneratedRecord:
    block, pos = divmod(index, BLOCK)
    slots, detail_order = _block_order(seed, block)
    k, ordinal = slots[pos]
    spec = SOURCES[k]
    rng = random.Random(f"litdata-demo-record:{seed}:{index}")
    keys: list[tuple[str, int]] = []
    if spec.family is not None:
        keys.append((spec.family, rng.randrange(pool.sizes[spec.family])))
    if spec.name == "llava_conv" and ordinal < MULTI_IMAGE_PER_BLOCK:
        keys.append(
            (spec.family, (keys[0][1] + 1 + rng.randrange(pool.sizes[spec.family] - 1)) % pool.sizes[spec.family])
        )
    scenes = tuple(pool.scene(f, j) for f, j in keys)
    rounds = _rounds(spec.name, rng, scenes, ordinal, list(detail_order))
    record: dict = {"id": f"{spec.name}-{seed}-{index:07d}"}
    if keys:
        paths = [pool.path(f, j) for f, j in keys]
        record["image"] = paths[0] if len(paths) == 1 else paths
    conversations = []
    for r, ex in enumerate(rounds):
        text = human_text(ex.segments)
        if r == 0 and len(keys) == 1:
            text = f"<image>\n{text}" if rng.random() < 0.85 else f"{text}\n<image>"
        elif r == 0 and keys:
            text = "<image>\n" * len(keys) + text
        conversations.append({"from": "human", "value": text})
        conversations.append({"from": "gpt", "value": ex.answer})
    record["conversations"] = conversations
    return GeneratedRecord(
        index=index,
        source=spec.name,
        record=record,
        human_segments=tuple(ex.segments for ex in rounds),
        qa=tuple(ex.qa for ex in rounds),
        scenes=scenes,
    )


def _rounds(
    name: str, rng: random.Random, scenes: tuple[Scene, ...], ordinal: int, detail_order: list[int]
) -> list[Exchange]:
    if name == "sharegpt":
        return chat_sources.sharegpt_rounds(rng)
    scene = scenes[0]
    if name == "vqav2":
        return vqa_sources.short_answer_rounds(rng, scene, vqa_sources.VQAV2_ASKERS, 10)
    if name == "gqa":
        return vqa_sources.short_answer_rounds(rng, scene, vqa_sources.GQA_ASKERS, 8)
    if name == "okvqa":
        return vqa_sources.short_answer_rounds(rng, scene, vqa_sources.OKVQA_ASKERS, 3)
    if name == "ocr_vqa":
        return vqa_sources.short_answer_rounds(rng, scene, vqa_sources.OCR_ASKERS, 5)
    if name == "a_okvqa":
        return vqa_sources.multiple_choice_rounds(rng, scene)
    if name == "textcaps":
        return vqa_sources.caption_rounds(rng, scene)
    if name == "refcoco":
        return vqa_sources.region_rounds(rng, scene, describe_share=0.4)
    if name == "vg":
        return vqa_sources.region_rounds(rng, scene, describe_share=0.7)
    if name == "llava_conv":
        if len(scenes) == 2:
            return chat_sources.multi_image_rounds(rng, scenes[0], scenes[1])
        return chat_sources.conversation_rounds(rng, scene)
    if name == "llava_detail":
        return chat_sources.detail_rounds(rng, scene, ordinal, detail_order)
    if name == "llava_complex":
        return chat_sources.complex_rounds(rng, scene)
    raise ValueError(f"unknown source {name!r}")


def generate_records(n: int, seed: int, *, pool: ImagePool | None = None, start: int = 0) -> Iterator[GeneratedRecord]:
    """Records start..start+n-1 of the stream for `seed`; the same (seed, index, pool size) gives the same record."""
    pool = pool or ImagePool(default_pool_size(n), seed)
    for i in range(start, start + n):
        yield record_at(i, seed, pool)


def ground_truth(records: Iterable[GeneratedRecord]) -> dict:
    """What template mining should find: the planted templates, every sentence that uses one as it appears in the
    data, and the informative human sentences (which must not be mined). Arguments of parametric templates
    (coordinates, referring phrases) are listed apart."""
    template_sentences: set[str] = set()
    informative: set[str] = set()
    arguments: set[str] = set()
    template_records: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    n = 0
    for rec in records:
        n += 1
        sources[rec.source] += 1
        used: set[str] = set()
        for segs in rec.human_segments:
            for k, seg in enumerate(segs):
                if seg.template is not None:
                    used.add(seg.template)
                    arg = segs[k + 1] if k + 1 < len(segs) and segs[k + 1].argument else None
                    template_sentences.add(seg.text + (arg.join + arg.text if arg else ""))
                elif seg.argument:
                    arguments.add(seg.text)
                else:
                    informative.add(seg.text)
        template_records.update(used)
    return {
        "records": n,
        "source_counts": dict(sorted(sources.items())),
        "templates": [t.text for t in PLANTED_TEMPLATES],
        "template_patterns": [
            {
                "name": t.name,
                "text": t.text,
                "parametric": t.parametric,
                "pattern": t.pattern,
                "sources": list(t.sources),
            }
            for t in PLANTED_TEMPLATES
        ],
        "template_records": {t.name: template_records[t.name] for t in PLANTED_TEMPLATES},
        "template_sentences": sorted(template_sentences),
        "informative": sorted(informative),
        "template_arguments": sorted(arguments),
    }
