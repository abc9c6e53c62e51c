"""Span classification inside turns: task-template mining and harmful spans (DESIGN.md, 'classify')."""

from litdata.classify.labeler import SpanLabel, TurnLabeler
from litdata.classify.mining import mine_templates
from litdata.classify.settings import HarmfulSettings, MiningSettings
from litdata.classify.table import TemplateTable

__all__ = ["HarmfulSettings", "MiningSettings", "SpanLabel", "TemplateTable", "TurnLabeler", "mine_templates"]
