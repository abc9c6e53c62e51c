"""Typed records that flow through the pipeline; one small file per record type."""

from litdata.records.conversation import Conversation, ImageRef, Role, Turn
from litdata.records.document import Document
from litdata.records.provenance import Provenance
from litdata.records.reject import Reject, RejectReason

__all__ = ["Conversation", "Document", "ImageRef", "Provenance", "Reject", "RejectReason", "Role", "Turn"]
