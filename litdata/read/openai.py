"""OpenAI-style turns: `messages: [{"role": "user", "content": str | [parts]}, ...]`.

Parts are joined with newlines; each image part becomes an `<image>` tag at its position. An image part
without a source (`{"type": "image"}`, as in TRL / HF datasets) is a placeholder for the next record-level image.
"""

from __future__ import annotations

from dataclasses import dataclass

from litdata.read.image_refs import image_ref, path_ref
from litdata.read.problem import json_type
from litdata.read.turns import RawTurn, parse_role
from litdata.records import ImageRef, RecordProblem, RejectReason
from litdata.records.conversation import IMAGE_PLACEHOLDER

_TEXT_PARTS = ("text", "input_text", "output_text")
_URL_PARTS = ("image_url", "input_image")


@dataclass(frozen=True, kw_only=True, slots=True)
class Messages:
    turns: list[RawTurn]
    images: list[ImageRef]  # images named inside the parts, in order
    placeholders: int  # image parts with no source of their own


def parse_messages(raw: list) -> Messages:
    turns: list[RawTurn] = []
    images: list[ImageRef] = []
    placeholders = 0
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise RecordProblem(
                RejectReason.BAD_FIELD_TYPE,
                f"{where} must be an object with 'role' and 'content', got {json_type(item)}",
            )
        said = item.get("role")
        if not isinstance(said, str):
            found = "is missing" if "role" not in item else f"is {json_type(said)}"
            raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where}.role must be a string but {found}")
        role = parse_role(said, where)
        content = item.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            pieces = []
            for j, part in enumerate(content):
                piece, ref = _part(part, f"{where}.content[{j}]")
                pieces.append(piece)
                if ref is not None:
                    images.append(ref)
                elif piece == IMAGE_PLACEHOLDER:
                    placeholders += 1
            text = "\n".join(pieces)
        else:
            found = "is missing" if "content" not in item else f"is {json_type(content)}"
            raise RecordProblem(
                RejectReason.BAD_FIELD_TYPE, f"{where}.content must be a string or a list of parts but {found}"
            )
        turns.append(RawTurn(role=role, text=text, field="messages", index=i, said=said))
    return Messages(turns=turns, images=images, placeholders=placeholders)


def _part(part: object, where: str) -> tuple[str, ImageRef | None]:
    """(text for this part, its image if it names one)."""
    if isinstance(part, str):
        return part, None
    if not isinstance(part, dict):
        raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where} must be a content part object, got {json_type(part)}")
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where}.text must be a string, got {json_type(text)}")
        return text, None
    if kind == "image":
        source = part.get("image")
        return IMAGE_PLACEHOLDER, (None if source is None else image_ref(source, f"{where}.image"))
    if kind in _URL_PARTS:
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        if not isinstance(url, str):
            raise RecordProblem(
                RejectReason.BAD_FIELD_TYPE,
                f'{where}.image_url must be a string or {{"url": ...}}, got {json_type(url)}',
            )
        return IMAGE_PLACEHOLDER, path_ref(url, f"{where}.image_url")
    raise RecordProblem(RejectReason.BAD_FIELD_TYPE, f"{where} has unsupported content part type {kind!r}")
