from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from litdata.records.audit import AuditHit
from litdata.records.provenance import Provenance


class RejectReason(str, Enum):
    """Why a record was not written. The values are stable codes that appear in rejects.jsonl and the manifest."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_TEXT = "invalid_text"  # NUL bytes, lone surrogates, control characters
    NOT_AN_OBJECT = "not_an_object"
    MISSING_CONVERSATIONS = "missing_conversations"
    EMPTY_CONVERSATIONS = "empty_conversations"
    EMPTY_TURN = "empty_turn"
    UNKNOWN_ROLE = "unknown_role"
    ROLES_OUT_OF_ORDER = "roles_out_of_order"
    BAD_FIELD_TYPE = "bad_field_type"
    IMAGE_COUNT_MISMATCH = "image_count_mismatch"
    IMAGE_MISSING = "image_missing"
    IMAGE_UNSAFE_PATH = "image_unsafe_path"
    IMAGE_UNDECODABLE = "image_undecodable"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_UNCOUNTABLE = "image_uncountable"  # the --image-tokens rule cannot count it (e.g. Qwen2-VL: ratio > 200)
    TOO_MANY_TURNS = "too_many_turns"
    TURN_TOO_LONG = "turn_too_long"
    TOO_LONG = "too_long"  # tokenized length (images expanded) exceeds --seq-len under --overflow drop
    TEMPLATE_ERROR = "template_error"  # the chat template could not render the record
    HARMFUL = "harmful"  # --harmful drop
    TOO_MANY_IMAGES = "too_many_images"  # more images than ReadLimits.max_images
    RECORD_TOO_LARGE = "record_too_large"  # one record's raw text exceeds ReadLimits.max_record_bytes
    READ_ERROR = "read_error"  # the reader could not decode this part of the source (e.g. a corrupt Parquet row group)


@dataclass(frozen=True, kw_only=True, slots=True)
class Reject:
    provenance: Provenance
    reason: RejectReason
    message: str
    audit: tuple[AuditHit, ...] = ()  # harmful spans found before it was rejected, for harmful_audit.jsonl

    def to_json(self) -> dict:
        p = self.provenance
        return {"file": p.source, "index": p.index, "id": p.id, "reason": self.reason.value, "message": self.message}


class RecordProblem(Exception):
    """Why one record cannot go on, raised by whichever stage finds it (reading, images, rendering, tokenizing);
    `reject` makes it the record's Reject, the only form a bad record takes in the output. Readers that must
    yield one item per record even when the record does not parse yield an instance instead of raising it."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    def reject(self, provenance: Provenance, audit: tuple[AuditHit, ...] = ()) -> Reject:
        return Reject(provenance=provenance, reason=self.reason, message=self.detail, audit=audit)
