"""`--template auto`: the tokenizer's own Jinja chat template, with each message located by construction.

The Jinja template is a black box. It is rendered twice: once with every message body replaced by a unique
sentinel, which shows exactly where each body goes and what markup surrounds it, and once with the real bodies.
The real output must then be the sentinel output with each sentinel replaced by its body, either verbatim or
trimmed (`| trim`, as Llama 3 and Gemma templates do); a body is never searched for in the output, so an answer
such as "is" cannot be found inside `<|im_start|>assistant`. A rendering that fits neither form is rejected
(`template_error`). The special token right after an assistant body (its end of turn) is part of the response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from litdata.classes import TokenClass
from litdata.records import Conversation, Role
from litdata.render.base import Rendered, SpanBuilder, TemplateError, TurnLabel, body_class, trim_turn

# Private-use code points, which no chat template adds; a record that contains a sentinel itself is rejected.
_SENTINEL = "\ue000litdata-message-{}\ue001"


def special_tokens(tokenizer: Any) -> tuple[str, ...]:
    """Every special token, longest first: `all_special_tokens` plus each `added_tokens_decoder` entry marked
    special (Llama 3 declares `<|eot_id|>` only there)."""
    found = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok.content))
    # Longest first, so that e.g. `<|im_end|>` wins over a shorter special that is its prefix.
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


@dataclass
class AutoTemplate:
    tokenizer: Any
    name: str = "auto"
    _specials: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("--template auto: the tokenizer has no chat_template; pick vicuna_v1, chatml or llama3")
        self._specials = special_tokens(self.tokenizer)

    def _apply(self, conv: Conversation, bodies: Sequence[str]) -> str:
        messages = [{"role": t.role.value, "content": body} for t, body in zip(conv.turns, bodies)]
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        except Exception as e:  # Jinja raises many kinds of errors (e.g. raise_exception on roles)
            raise TemplateError(f"the tokenizer's chat template failed: {e}") from None

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        sentinels = [_SENTINEL.format(i) for i in range(len(conv.turns))]
        if any(s in t.text for s in sentinels for t in conv.turns):
            raise TemplateError("the record contains litdata's private-use sentinel characters")
        markup = self._markup(self._apply(conv, sentinels), sentinels)
        text = self._apply(conv, [t.text for t in conv.turns])
        b = SpanBuilder()
        trimmed: list[int] = []
        cursor = 0
        for i, turn in enumerate(conv.turns):
            if not text.startswith(markup[i], cursor):
                raise TemplateError(f"turn {i} ({turn.role.value}): the template's output cannot be located "
                                    "(its markup depends on the message text)")
            b.add(markup[i])
            cursor += len(markup[i])
            body, spans = self._body(text, cursor, turn.text, labels[i], markup[i + 1])
            if body is None:
                raise TemplateError(f"turn {i} ({turn.role.value}): the template changes the message text beyond "
                                    "trimming it, so its tokens cannot be located")
            if body != turn.text:
                trimmed.append(i)
            b.add_turn(body, body_class(turn.role), spans)
            cursor += len(body)
            if turn.role is Role.ASSISTANT:
                eot = next((s for s in self._specials if markup[i + 1].startswith(s)), "")
                b.add(eot, TokenClass.RESPONSE)
                cursor += len(eot)
                markup[i + 1] = markup[i + 1][len(eot):]
        if text[cursor:] != markup[-1]:
            raise TemplateError("the template's output after the last message cannot be located")
        b.add(markup[-1])
        return b.build(trimmed=trimmed)

    @staticmethod
    def _markup(rendered: str, sentinels: Sequence[str]) -> list[str]:
        """The text between sentinels: markup[i] precedes message i, markup[-1] follows the last one."""
        out, cursor = [], 0
        for i, s in enumerate(sentinels):
            at = rendered.find(s, cursor)
            if at < 0 or rendered.count(s) != 1:
                raise TemplateError(f"turn {i}: the chat template does not output each message exactly once")
            out.append(rendered[cursor:at])
            cursor = at + len(s)
        out.append(rendered[cursor:])
        return out

    @staticmethod
    def _body(text: str, at: int, raw: str, labels: Sequence[TurnLabel], after: str):
        """The body as the template wrote it at `at`: verbatim, or trimmed; (None, []) if neither fits."""
        for body, spans in ((raw, list(labels)), trim_turn(raw, labels)):
            if text.startswith(body, at) and text.startswith(after, at + len(body)):
                return body, spans
        return None, []
