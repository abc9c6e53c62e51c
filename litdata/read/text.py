"""Turn text checks and LLaVA-1.5's placement of a single image tag."""

from __future__ import annotations

import re

from litdata.records.conversation import IMAGE_PLACEHOLDER

# NUL and other C0 controls (tab, newline and carriage return are text) and lone surrogates, which JSON
# lets through as \\ud800 escapes but which no tokenizer or UTF-8 writer accepts.
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """None when the text is clean, else what is wrong and where, e.g. 'contains a NUL byte (U+0000) at character 5'."""
    m = _BAD_CHAR.search(text)
    if m is None:
        return None
    cp = ord(m.group())
    if cp == 0:
        kind = "a NUL byte"
    elif 0xD800 <= cp <= 0xDFFF:
        kind = "a lone surrogate"
    else:
        kind = "a control character"
    return f"contains {kind} (U+{cp:04X}) at character {m.start()}"


def count_image_tags(text: str) -> int:
    return text.count(IMAGE_PLACEHOLDER)


def llava_single_image_text(text: str) -> str:
    """LLaVA-1.5 `preprocess_multimodal`: the tag is removed, the rest stripped, and '<image>\\n' put in front."""
    return IMAGE_PLACEHOLDER + "\n" + text.replace(IMAGE_PLACEHOLDER, "").strip()
