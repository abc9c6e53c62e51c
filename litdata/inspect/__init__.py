"""`litdata inspect`: see what gets loss, in the terminal (terminal.py) or as one HTML page (html.py)."""

from litdata.inspect.reader import CompiledFolder, DocumentMeta, InspectError, PackedDocument, ShardSequence
from litdata.inspect.spans import Decoder, Span, document_spans

__all__ = ["CompiledFolder", "Decoder", "DocumentMeta", "InspectError", "PackedDocument", "ShardSequence", "Span",
           "document_spans"]
