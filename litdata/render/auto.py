"""`--template auto`: the tokenizer's own Jinja chat template, with each message located in the rendered text.

The Jinja template is a black box, so the message bodies are found by searching for them in order in its output.
Everything between bodies is markup, except the end-of-turn special token right after an assistant message,
which is part of the response (the model must learn to stop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from litdata.classes import TokenClass
from litdata.records import Conversation, Role
from litdata.render.base import Rendered, SpanBuilder, TemplateError, TurnLabel, body_class


@dataclass
class AutoTemplate:
    tokenizer: Any
    name: str = "auto"
    _specials: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("--template auto: the tokenizer has no chat_template; pick vicuna_v1, chatml or llama3")
        # Longest first, so that e.g. `<|im_end|>` wins over a shorter special that is its prefix.
        self._specials = tuple(sorted(set(self.tokenizer.all_special_tokens), key=len, reverse=True))

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        messages = [{"role": t.role.value, "content": t.text} for t in conv.turns]
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        except Exception as e:  # Jinja raises many kinds of errors (e.g. raise_exception on roles)
            raise TemplateError(f"the tokenizer's chat template failed: {e}") from None
        b = SpanBuilder()
        cursor = 0
        for i, turn in enumerate(conv.turns):
            at = text.find(turn.text, cursor)
            if at < 0:
                raise TemplateError(f"turn {i} ({turn.role.value}) does not appear verbatim in the chat template output")
            b.add(text[cursor:at])
            b.add_turn(turn.text, body_class(turn.role), labels[i])
            cursor = at + len(turn.text)
            if turn.role is Role.ASSISTANT:
                eot = next((s for s in self._specials if text.startswith(s, cursor)), "")
                b.add(eot, TokenClass.RESPONSE)
                cursor += len(eot)
        b.add(text[cursor:])
        return b.build()
