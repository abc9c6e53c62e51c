"""Write a synthetic LLaVA-665K-shaped workload: records (streamed), a shared image pool, and the template truth.

python3 -m benchmarks.workload --records 100000 --out /tmp/wl --seed 0 [--images 2000] [--format json|jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.world.generate import PLANTED_TEMPLATES, ImagePool, generate_records
from benchmarks.world.scene import encode_image
from litdata.shards.atomic import atomic_file


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkloadPaths:
    records: Path  # the LLaVA JSON array or JSONL file
    image_root: Path
    ground_truth: Path
    image_count: int
    record_count: int


def write_images(pool: ImagePool, image_root: Path) -> int:
    count = 0
    for rel, scene, fmt in pool.all_images():
        path = image_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_image(scene, fmt))
        count += 1
    return count


def write_workload(n: int, out_dir: Path, seed: int = 0, *, images: int = 2000, fmt: str = "json") -> WorkloadPaths:
    """Generate n records one at a time (memory stays flat at any n) and the pool of `images` pictures."""
    if fmt not in ("json", "jsonl"):
        raise ValueError(f"format must be json or jsonl, not {fmt!r}")
    if n < 1 or images < 10:
        raise ValueError(f"need at least 1 record and 10 images (got records={n}, images={images})")
    out_dir.mkdir(parents=True, exist_ok=True)
    pool = ImagePool(images, seed)
    image_root = out_dir / "images"
    image_count = write_images(pool, image_root)
    records_path = out_dir / f"llava_{n}.{fmt}"
    sources: Counter[str] = Counter()
    template_records: Counter[str] = Counter()
    with atomic_file(records_path) as tmp, tmp.open("w", encoding="utf-8") as f:
        if fmt == "json":
            f.write("[\n")
        for g in generate_records(n, seed, pool=pool):
            line = json.dumps(g.record, ensure_ascii=False)
            if fmt == "json":
                f.write(line if g.index == 0 else ",\n" + line)
            else:
                f.write(line + "\n")
            sources[g.source] += 1
            template_records.update({s.template for segs in g.human_segments for s in segs if s.template})
        if fmt == "json":
            f.write("\n]\n")
    truth = {
        "records": n,
        "seed": seed,
        "images": image_count,
        "source_counts": dict(sorted(sources.items())),
        "templates": [t.text for t in PLANTED_TEMPLATES],
        "template_patterns": [
            {"name": t.name, "text": t.text, "parametric": t.parametric, "pattern": t.pattern}
            for t in PLANTED_TEMPLATES
        ],
        "template_records": {t.name: template_records[t.name] for t in PLANTED_TEMPLATES},
    }
    truth_path = out_dir / "ground_truth.json"
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return WorkloadPaths(
        records=records_path, image_root=image_root, ground_truth=truth_path, image_count=image_count, record_count=n
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m benchmarks.workload", description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--format", choices=("json", "jsonl"), default="json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = write_workload(args.records, args.out, args.seed, images=args.images, fmt=args.format)
    secs = time.perf_counter() - t0
    mb = paths.records.stat().st_size / 1e6
    print(f"records:      {paths.records} ({paths.record_count} records, {mb:.1f} MB)")
    print(f"image root:   {paths.image_root} ({paths.image_count} images)")
    print(f"ground truth: {paths.ground_truth}")
    print(f"took {secs:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
