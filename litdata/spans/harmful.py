"""Harmful-span detectors: a spaCy PhraseMatcher lexicon and an optional local text-classification model.

The lexicon matches on the LOWER attribute (whole tokens, case-insensitive). Lemma matching would also catch
inflections ("synthesizing sarin"), but needs a lemmatizer, and the blank English pipeline used here (no
model download) has none; so list the inflections you care about in the lexicon file.

The model is any local Hugging Face sequence-classification checkpoint, loaded with local_files_only=True and
scored per sentence in batches. The label that means harmful is given (`harmful_label`) or guessed from
the label names (harmful, toxic, unsafe, ...; LABEL_1 of a two-label model without names).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from litdata.config import HarmfulSettings

__all__ = ["DEFAULT_LEXICON", "HarmfulSettings", "ModelDetector", "build_matcher", "read_lexicon", "resolve_label"]

DEFAULT_LEXICON = Path(__file__).parent / "data" / "harmful_default.txt"
_HARMFUL_NAMES = ("harmful", "toxic", "unsafe", "offensive", "hate", "nsfw", "jailbreak")
_NEGATED = re.compile(r"^(not|non|no)[\W_]*")


def read_lexicon(path: str | Path) -> tuple[str, ...]:
    """Phrases of a lexicon file: one per line, blank lines and '#' comments skipped, whitespace collapsed."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read harmful lexicon {path}: {e.__class__.__name__}: {e}") from None
    phrases = (" ".join(line.split()) for line in lines if not line.lstrip().startswith("#"))
    return tuple(dict.fromkeys(p for p in phrases if p))


def build_matcher(nlp, phrases: Sequence[str]):
    """A PhraseMatcher on lower-cased tokens; each phrase is its own match key, so hits name their phrase."""
    if not phrases:
        return None
    from spacy.matcher import PhraseMatcher

    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    for phrase in phrases:
        matcher.add(phrase.lower(), [nlp.make_doc(phrase)])
    return matcher


def resolve_label(id2label: dict[int, str], wanted: str | None, model: str) -> int:
    """The class index that means harmful, by name (`wanted`) or by guessing from the label names."""
    names = {int(i): str(n) for i, n in id2label.items()}
    if wanted is not None:
        for i, n in names.items():
            if n.lower() == wanted.lower():
                return i
        raise ValueError(f"harmful model {model} has no label {wanted!r} (labels: {', '.join(names.values())})")
    candidates = [
        i for i, n in names.items() if not _NEGATED.match(n.lower()) and any(h in n.lower() for h in _HARMFUL_NAMES)
    ]
    if len(candidates) == 1:
        return candidates[0]
    if len(names) == 2 and sorted(names.values()) == ["LABEL_0", "LABEL_1"]:
        return 1
    raise ValueError(
        f"cannot tell which label of harmful model {model} means harmful (labels: {', '.join(names.values())}); "
        "name it with --harmful-label"
    )


class ModelDetector:
    """Scores sentences with a local sequence-classification model: P(harmful label) per sentence."""

    def __init__(self, path: str, *, harmful_label: str | None = None, batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load harmful model {path}: {str(e).splitlines()[0]}") from None
        self.model.eval()
        self.name = f"model:{Path(path).name}"
        self.batch_size = batch_size
        self.index = resolve_label(self.model.config.id2label, harmful_label, path)
        multi = self.model.config.problem_type == "multi_label_classification" or self.model.config.num_labels == 1
        self._activation = torch.sigmoid if multi else (lambda x: torch.softmax(x, dim=-1))
        self._max_length = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)

    def scores(self, texts: Sequence[str]) -> list[float]:
        import torch

        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = list(texts[i : i + self.batch_size])
                enc = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
                )
                probs = self._activation(self.model(**enc).logits.float())
                out.extend(probs[:, self.index].tolist())
        return out
