"""Spans inside turns, labelled before rendering: task-template mining and harmful spans (DESIGN.md, 'spans').

The names below are imported on first use (PEP 562), not with the package: the labeler pulls in spaCy (and,
through thinc, torch) and mining pulls in polars, seconds of start-up that `litdata --help` and the argument
parser (which imports litdata.commands.span_options) should not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litdata.config import HarmfulSettings, MiningSettings
    from litdata.spans.labeler import SpanLabel, TurnLabeler
    from litdata.spans.mining import mine_templates
    from litdata.spans.table import TemplateTable

_WHERE = {
    "HarmfulSettings": "litdata.config",
    "MiningSettings": "litdata.config",
    "SpanLabel": "litdata.spans.labeler",
    "TurnLabeler": "litdata.spans.labeler",
    "mine_templates": "litdata.spans.mining",
    "TemplateTable": "litdata.spans.table",
}
__all__ = ["HarmfulSettings", "MiningSettings", "SpanLabel", "TemplateTable", "TurnLabeler", "mine_templates"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'litdata.spans' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value
