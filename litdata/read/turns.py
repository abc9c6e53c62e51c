"""Role names and the turn shape shared by the ShareGPT and OpenAI parsers."""

from __future__ import annotations

from dataclasses import dataclass

from litdata.records import RecordProblem, RejectReason, Role

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


_TEXT_KEY = {"conversations": "value", "messages": "content"}


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building one RawTurn per
# turn of every record cost about as much as the rest of validation. Nothing changes a RawTurn after parsing.
@dataclass(kw_only=True, slots=True)
class RawTurn:
    role: Role
    text: str
    field: str  # "conversations" or "messages"
    index: int
    said: str  # the role as the record wrote it

    # Labels for messages are built only when a message needs them: most records are fine.
    @property
    def where(self) -> str:
        return f"{self.field}[{self.index}]"

    @property
    def text_field(self) -> str:
        return f"{self.where}.{_TEXT_KEY[self.field]}"


def parse_role(said: str, where: str) -> Role:
    role = ROLES.get(said.strip().lower())
    if role is None:
        raise unknown_role(said, where)
    return role


def unknown_role(said: str, where: str) -> RecordProblem:
    known = ", ".join(sorted(ROLES))
    return RecordProblem(RejectReason.UNKNOWN_ROLE, f"{where} has unknown role {said[:40]!r} (known: {known})")
