"""Role names and the turn shape shared by the ShareGPT and OpenAI parsers."""

from __future__ import annotations

from dataclasses import dataclass

from litdata.read.problem import RecordError
from litdata.records import RejectReason, Role

ROLES: dict[str, Role] = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,  # OpenAI's newer name for the system message
    "human": Role.USER,
    "user": Role.USER,
    "gpt": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "chatgpt": Role.ASSISTANT,
    "bard": Role.ASSISTANT,
    "bing": Role.ASSISTANT,
    "model": Role.ASSISTANT,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class RawTurn:
    role: Role
    text: str
    where: str  # e.g. "conversations[3]", for messages
    text_field: str  # e.g. "conversations[3].value"
    said: str  # the role as the record wrote it


def parse_role(said: str, where: str) -> Role:
    role = ROLES.get(said.strip().lower())
    if role is None:
        known = ", ".join(sorted(ROLES))
        raise RecordError(RejectReason.UNKNOWN_ROLE, f"{where} has unknown role {said[:40]!r} (known: {known})")
    return role
