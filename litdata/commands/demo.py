"""`litdata demo [--out DIR]`: compile the bundled demo dataset with the bundled tokenizer."""

from __future__ import annotations

import argparse
from pathlib import Path

from litdata.commands.compile import add_encoding_arguments, config_from_args, engine_from_args, execute


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_encoding_arguments(p)
    p.set_defaults(out=Path("demo-out"))


def run(args: argparse.Namespace) -> int:
    from litdata.demo import DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR

    # Rerunning the demo replaces an earlier demo; OutputWriter still deletes only files a litdata run recorded
    # and refuses a folder holding other files at litdata's output names.
    args.overwrite = True
    cfg = config_from_args(args, sources=[str(s) for s in DEMO_SOURCES], tokenizer=str(DEMO_TOKENIZER_DIR),
                           image_root=str(DEMO_IMAGE_ROOT))
    return execute(cfg, engine_from_args(args, cfg))
