"""`litdata inspect`: see what gets loss, in the terminal (terminal.py) or as one HTML page (html.py)."""

from litdata.inspect.reader import DocumentMeta, InspectError, OutputFolder, PackedDocument, PackedSequence
from litdata.inspect.spans import Decoder, Span, document_spans

__all__ = ["Decoder", "DocumentMeta", "InspectError", "OutputFolder", "PackedDocument", "PackedSequence", "Span",
           "document_spans"]
