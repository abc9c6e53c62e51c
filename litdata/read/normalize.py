"""One parsed JSON / Parquet record -> a validated Conversation, or a Reject that says exactly what is wrong."""

from __future__ import annotations

from typing import Any

from litdata.config import ReadLimits
from litdata.read.image_refs import record_images
from litdata.read.openai import parse_messages
from litdata.read.plain import plain_conversation
from litdata.read.problem import json_type
from litdata.read.sharegpt import parse_conversations
from litdata.read.text import count_image_tags, llava_single_image_text, text_problem
from litdata.read.turns import RawTurn
from litdata.records import Conversation, ImageRef, Provenance, RecordProblem, Reject, RejectReason, Role, Turn
from litdata.records.conversation import IMAGE_PLACEHOLDER, make_turns


def record_id(record: Any) -> str | None:
    if isinstance(record, dict):
        rid = record.get("id")
        if isinstance(rid, str):
            return rid
        if isinstance(rid, int) and not isinstance(rid, bool):
            return str(rid)
    return None


def normalize_record(record: Any, *, source: str, index: int, limits: ReadLimits) -> Conversation | Reject:
    provenance = Provenance(source=source, index=index, id=record_id(record))
    try:
        turns, images = _parse(record, limits)
    except RecordProblem as p:
        return p.reject(provenance)
    return Conversation(provenance=provenance, turns=turns, images=images)


def _parse(record: Any, limits: ReadLimits) -> tuple[tuple[Turn, ...], tuple[ImageRef, ...]]:
    if not isinstance(record, dict):
        raise RecordProblem(RejectReason.NOT_AN_OBJECT, f"record is {json_type(record)}, expected an object")
    # Parquet files that mix both shapes carry both columns, with null in the one a row does not use.
    field = "conversations" if record.get("conversations") is not None else "messages"
    raw = record.get(field)
    if raw is None:
        keys = ", ".join(repr(k) for k in list(record)[:12]) or "none"
        raise RecordProblem(
            RejectReason.MISSING_CONVERSATIONS, f"record has neither 'conversations' nor 'messages' (keys: {keys})"
        )
    if not isinstance(raw, list):
        raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"'{field}' must be a list of turns, got {json_type(raw)}")
    if not raw:
        raise RecordProblem(RejectReason.EMPTY_CONVERSATIONS, f"'{field}' is an empty list")
    if len(raw) > limits.max_turns:
        raise RecordProblem(
            RejectReason.TOO_MANY_TURNS, f"'{field}' has {len(raw)} turns, more than max_turns={limits.max_turns}"
        )

    listed = record_images(record)
    if field == "conversations":
        plain = plain_conversation(raw, limits.max_turn_chars)
        if plain is not None and plain[2] == len(listed) <= limits.max_images:  # the checks below would pass
            roles, texts, _ = plain
            return make_turns(roles, _llava_texts(texts) if len(listed) == 1 else texts), tuple(listed)
        turns = parse_conversations(raw)
        images = listed
    else:
        messages = parse_messages(raw)
        turns = messages.turns
        images = _merge_message_images(messages.images, messages.placeholders, listed)

    for turn in turns:
        _check_text(turn, limits)
    _check_order(turns)
    if len(images) > limits.max_images:
        raise RecordProblem(
            RejectReason.TOO_MANY_IMAGES, f"record has {len(images)} images, more than max_images={limits.max_images}"
        )
    _check_image_count(turns, len(images))

    texts = [t.text for t in turns]
    if len(images) == 1:
        texts = _llava_texts(texts)
    return make_turns([t.role for t in turns], texts), tuple(images)


def _llava_texts(texts: list[str]) -> list[str]:
    return [llava_single_image_text(t) if IMAGE_PLACEHOLDER in t else t for t in texts]


def _merge_message_images(inline: list[ImageRef], placeholders: int, listed: list[ImageRef]) -> list[ImageRef]:
    if inline and listed:
        raise RecordProblem(
            RejectReason.BAD_FIELD_TYPE, "images are named both inside 'messages' and in 'image'/'images'; keep one"
        )
    if inline and placeholders:
        raise RecordProblem(
            RejectReason.BAD_FIELD_TYPE,
            f"'messages' mixes {len(inline)} image parts with a source and {placeholders} without one",
        )
    return inline or listed


def _check_text(turn: RawTurn, limits: ReadLimits) -> None:
    problem = text_problem(turn.text)
    if problem is not None:
        raise RecordProblem(RejectReason.INVALID_TEXT, f"{turn.text_field} {problem}")
    if not turn.text or turn.text.isspace():  # `not text.strip()` without copying the text
        raise RecordProblem(RejectReason.EMPTY_TURN, f"{turn.text_field} ({turn.role.value} turn) is empty")
    if len(turn.text) > limits.max_turn_chars:
        raise RecordProblem(
            RejectReason.TURN_TOO_LONG,
            f"{turn.text_field} has {len(turn.text)} characters, more than max_turn_chars={limits.max_turn_chars}",
        )


def _check_order(turns: list[RawTurn]) -> None:
    """Optional leading system turn, then user, assistant, user, ... ending with assistant."""
    body = turns[1:] if turns[0].role is Role.SYSTEM else turns
    if not body:
        raise RecordProblem(RejectReason.ROLES_OUT_OF_ORDER, "the record has a system turn and nothing else")
    expected = Role.USER
    for turn in body:
        if turn.role is Role.SYSTEM:
            raise RecordProblem(
                RejectReason.ROLES_OUT_OF_ORDER,
                f"{turn.where} is a system turn (from {turn.said!r}); a system turn is only allowed first",
            )
        if turn.role is not expected:
            after = "the conversation must start with a user turn" if turn is body[0] else "turns must alternate"
            raise RecordProblem(
                RejectReason.ROLES_OUT_OF_ORDER,
                f"{turn.where} is {_article(turn.role)} turn (from {turn.said!r}) where {_article(expected)} turn "
                f"was expected ({after})",
            )
        expected = Role.ASSISTANT if expected is Role.USER else Role.USER
    last = body[-1]
    if last.role is Role.USER:
        raise RecordProblem(
            RejectReason.ROLES_OUT_OF_ORDER,
            f"{last.where} is a user turn with no assistant answer after it (the last turn must be an assistant turn)",
        )


def _check_image_count(turns: list[RawTurn], n_images: int) -> None:
    tags = [count_image_tags(t.text) for t in turns]
    if sum(tags) == n_images:
        return
    where = ", ".join(f"{t.where}: {n}" for t, n in zip(turns, tags) if n) or "none"
    raise RecordProblem(
        RejectReason.IMAGE_COUNT_MISMATCH,
        f"the text has {sum(tags)} {IMAGE_PLACEHOLDER} tags ({where}) but the record names {n_images} images",
    )


def _article(role: Role) -> str:
    return f"an {role.value}" if role is Role.ASSISTANT else f"a {role.value}"
