"""Typed records that flow through the pipeline; one small file per record type."""

from litdata.records.audit import AuditHit
from litdata.records.conversation import Conversation, ImageRef, Role, Turn
from litdata.records.document import Document
from litdata.records.provenance import Provenance
from litdata.records.reject import RecordProblem, Reject, RejectReason

__all__ = ["AuditHit", "Conversation", "Document", "ImageRef", "Provenance", "RecordProblem", "Reject", "RejectReason",
           "Role", "Turn"]
