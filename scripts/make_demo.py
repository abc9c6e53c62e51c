"""Regenerate the bundled demo assets (litdata/demo/data and litdata/demo/tokenizer). Deterministic.

python3 scripts/make_demo.py [--out DIR]     (default: the package's litdata/demo)
"""

from __future__ import annotations

import os

# One rayon thread: BPE training must give byte-identical files on every run (set before tokenizers loads).
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the generator lives in the repository, not the wheel
    from benchmarks.world.build import build_demo
    from litdata.demo import DEMO_DIR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEMO_DIR.parent, help="folder that gets data/ and tokenizer/")
    args = ap.parse_args(argv)
    files = build_demo(args.out)
    total = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB, under {args.out}/data and {args.out}/tokenizer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
