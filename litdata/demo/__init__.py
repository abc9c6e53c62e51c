"""The bundled demo dataset and tokenizer (regenerate with `python3 scripts/make_demo.py`).

DEMO_DIR is the data folder: llava_demo.json (LLaVA-1.5 array with planted bad records), extra.jsonl (ShareGPT
rows with a system turn, OpenAI-style messages, one invalid line), images/ and ground_truth.json (planted
templates, informative sentences, and the reject reason each bad record must get).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
DEMO_DIR: Path = _HERE / "data"
DEMO_SOURCES: list[Path] = [DEMO_DIR / "llava_demo.json", DEMO_DIR / "extra.jsonl"]
DEMO_IMAGE_ROOT: Path = DEMO_DIR / "images"
DEMO_TOKENIZER_DIR: Path = _HERE / "tokenizer"
DEMO_GROUND_TRUTH: Path = DEMO_DIR / "ground_truth.json"

__all__ = ["DEMO_DIR", "DEMO_GROUND_TRUTH", "DEMO_IMAGE_ROOT", "DEMO_SOURCES", "DEMO_TOKENIZER_DIR"]
