"""One colour per token class, shared by the terminal and the HTML views so that they read the same."""

from __future__ import annotations

from dataclasses import dataclass

from litdata.classes import TokenClass


@dataclass(frozen=True, kw_only=True)
class ClassColour:
    rich: str  # rich style for the text in a terminal
    css_bg: str  # light background for the HTML page (dark text stays readable on it)
    css_fg: str  # swatch / bar colour in the HTML page


PALETTE: dict[TokenClass, ClassColour] = {
    TokenClass.MARKUP: ClassColour(rich="grey58", css_bg="#ececec", css_fg="#9e9e9e"),
    TokenClass.SYSTEM: ClassColour(rich="medium_purple", css_bg="#e8e0f8", css_fg="#8e6fd8"),
    TokenClass.IMAGE: ClassColour(rich="magenta", css_bg="#fbd5f0", css_fg="#d63cab"),
    TokenClass.TASK_TEMPLATE: ClassColour(rich="dark_orange", css_bg="#ffe3b8", css_fg="#f08c00"),
    TokenClass.INSTRUCTION: ClassColour(rich="green3", css_bg="#cff5d2", css_fg="#2f9e44"),
    TokenClass.RESPONSE: ClassColour(rich="dodger_blue1", css_bg="#d0e7ff", css_fg="#1c7ed6"),
    TokenClass.HARMFUL: ClassColour(rich="bold red", css_bg="#ffc9c9", css_fg="#e03131"),
}


def format_weight(w: float) -> str:
    return f"{w:g}"
