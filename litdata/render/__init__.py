"""Chat templates: a conversation becomes text plus character spans, each span with a token class."""

from litdata.render.base import ChatTemplate, Rendered, SpanBuilder, TemplateError
from litdata.render.registry import TEMPLATE_NAMES, get_template

__all__ = ["ChatTemplate", "Rendered", "SpanBuilder", "TemplateError", "TEMPLATE_NAMES", "get_template"]
