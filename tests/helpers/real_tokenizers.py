"""The vendored real tokenizers (tests/fixtures/tokenizers/README.md), as folders that `--tokenizer` accepts."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "tokenizers"


def llama2_folder(dest: Path, *, legacy: bool) -> Path:
    """The Llama-style SentencePiece BPE tokenizer (`tokenizer.json` + config) with `legacy` set as asked."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "llama2" / "tokenizer.json", dest / "tokenizer.json")
    config = json.loads((FIXTURES / "llama2" / "tokenizer_config.json").read_text())
    config["legacy"] = legacy
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return dest


def llama3_folder(dest: Path) -> Path:
    """Llama 3's tokenizer with Meta's chat template, unpacked."""
    dest.mkdir(parents=True, exist_ok=True)
    with gzip.open(FIXTURES / "llama3" / "tokenizer.json.gz") as src, open(dest / "tokenizer.json", "wb") as out:
        shutil.copyfileobj(src, out)
    shutil.copy(FIXTURES / "llama3" / "tokenizer_config.json", dest / "tokenizer_config.json")
    return dest


def sentencepiece_folder(dest: Path, *, with_config: bool = True) -> Path:
    """`tokenizer.model` (+ a LLaMA `tokenizer_config.json`, as Vicuna and LLaVA checkpoints ship), no
    tokenizer.json."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "mistral_sp" / "tokenizer.model", dest / "tokenizer.model")
    if with_config:
        config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                  "add_bos_token": True, "add_eos_token": False, "legacy": True}
        (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return dest
