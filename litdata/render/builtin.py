"""Built-in templates rendered exactly as the reference implementations do.

Each template says which text is markup and which is turn body; the end-of-turn token after an answer is
part of the response (LLaVA trains `</s>`), everything else the template adds is markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from litdata.classes import TokenClass
from litdata.records import Conversation, Role
from litdata.render.base import Rendered, SpanBuilder, TurnLabel, body_class, trim_turn

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


def _split_system(conv: Conversation):
    """(index of the record's own system turn or None, the other turns with their indices)."""
    turns = list(enumerate(conv.turns))
    if turns and turns[0][1].role is Role.SYSTEM:
        return 0, turns[1:]
    return None, turns


def _add_system(b: SpanBuilder, conv: Conversation, idx: int | None, default: str, labels) -> None:
    if idx is None:
        b.add(default, TokenClass.SYSTEM)
    else:
        b.add_turn(conv.turns[idx].text, TokenClass.SYSTEM, labels[idx])


@dataclass(frozen=True)
class VicunaV1:
    """LLaVA-1.5's `conv_vicuna_v1` (SeparatorStyle.TWO, sep " ", sep2 "</s>"):
    `{system} USER: {q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>`.

    BOS is not text: as in LLaVA's `preprocess_v1`, the tokenizer adds it, and the text is tokenized chunk by
    chunk between `<image>` placeholders (`llava_chunks`, see litdata/tokenize/batch.py). Rendering `<s>` as text gives
    other ids under `legacy: false` (no word-start marker after a special token).
    """

    name: str = "vicuna_v1"
    eos: str = "</s>"

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        b = SpanBuilder()
        sys_idx, turns = _split_system(conv)
        _add_system(b, conv, sys_idx, VICUNA_SYSTEM, labels)
        b.add(" ")
        for i, t in turns:
            if t.role is Role.USER:
                b.add("USER: ")
                b.add_turn(t.text, TokenClass.INSTRUCTION, labels[i])
                b.add(" ")
            else:
                b.add("ASSISTANT: ")
                b.add_turn(t.text, TokenClass.RESPONSE, labels[i])
                b.add(self.eos, TokenClass.RESPONSE)
        return b.build(llava_chunks=True)


@dataclass(frozen=True)
class ChatML:
    """`<|im_start|>{role}\\n{text}<|im_end|>\\n` per turn (Qwen / LLaVA-NeXT style), default system prompt."""

    name: str = "chatml"
    default_system: str = "You are a helpful assistant."

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        b = SpanBuilder()
        sys_idx, turns = _split_system(conv)
        b.add("<|im_start|>system\n")
        _add_system(b, conv, sys_idx, self.default_system, labels)
        b.add("<|im_end|>\n")
        for i, t in turns:
            b.add(f"<|im_start|>{t.role.value}\n")
            b.add_turn(t.text, body_class(t.role), labels[i])
            b.add("<|im_end|>", TokenClass.RESPONSE if t.role is Role.ASSISTANT else TokenClass.MARKUP)
            b.add("\n")
        return b.build()


@dataclass(frozen=True)
class Llama3:
    """Llama-3 instruct, as Meta's chat template renders it without a generation prompt: `<|begin_of_text|>`
    then `<|start_header_id|>{role}<|end_header_id|>\\n\\n{text | trim}<|eot_id|>` per message. The template
    trims every message, so this does too, and records which turns it changed (`Rendered.trimmed`)."""

    name: str = "llama3"

    def render(self, conv: Conversation, labels: Sequence[Sequence[TurnLabel]]) -> Rendered:
        b = SpanBuilder()
        trimmed = []
        b.add("<|begin_of_text|>")
        for i, t in enumerate(conv.turns):
            b.add(f"<|start_header_id|>{t.role.value}<|end_header_id|>\n\n")
            body, spans = trim_turn(t.text, labels[i])
            if body != t.text:
                trimmed.append(i)
            b.add_turn(body, body_class(t.role), spans)
            b.add("<|eot_id|>", TokenClass.RESPONSE if t.role is Role.ASSISTANT else TokenClass.MARKUP)
        return b.build(trimmed=trimmed)
