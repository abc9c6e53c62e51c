"""Read + validate: input files -> Conversations and Rejects; image resolution for the workers."""

from litdata.config import ReadLimits
from litdata.read.images import resolve_image, safe_image_path
from litdata.read.normalize import normalize_record
from litdata.read.sources import SourceError, read_source, read_sources, source_format

__all__ = [
    "ReadLimits",
    "SourceError",
    "normalize_record",
    "read_source",
    "read_sources",
    "resolve_image",
    "safe_image_path",
    "source_format",
]
