from __future__ import annotations

from typing import Any

from litdata.render.base import ChatTemplate
from litdata.render.builtin import ChatML, Llama3, VicunaV1

_BUILTIN = {"vicuna_v1": VicunaV1, "chatml": ChatML, "llama3": Llama3}
TEMPLATE_NAMES = (*_BUILTIN, "auto")


def get_template(name: str, tokenizer: Any = None) -> ChatTemplate:
    if name == "auto":
        from litdata.render.auto import AutoTemplate

        return AutoTemplate(tokenizer)
    try:
        return _BUILTIN[name]()
    except KeyError:
        raise ValueError(f"unknown template {name!r} (valid: {', '.join(TEMPLATE_NAMES)})") from None
