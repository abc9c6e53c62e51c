"""Realistic LLaVA-1.5-shaped records for the golden tokenizer tests: VQA with the 665K task sentences, GPT-4
style conversations, Alpaca-style text-only instructions, and the cases where tokenizers disagree: answers that
start with a digit, CJK or an emoji, runs of spaces, indented code blocks, multi-turn records."""

from __future__ import annotations

import random

VQA_SUFFIX = "Answer the question using a single word or phrase."
QUESTIONS = [
    "What color is the bus?", "How many people are in the picture?", "What is the man holding?",
    "Is the cat sleeping?", "What time of day is it?", "Which animal is shown?", "What is written on the sign?",
    "Where is the dog sitting?", "What sport is being played?", "How many wheels does the vehicle have?",
]
SHORT_ANSWERS = [
    "Red", "Yes", "No", "2", "42", "3.5", "1990", "12:30", "红色", "猫", "東京", "🍕", "😀 happy", "Blue and white",
    "A surfboard", "Kitchen", "frisbee", "left", "0", "100%", "$5", "-3", "(a)", "#1", "“quoted”", "Ünïcödé",
]
LONG_QUESTIONS = [
    "Describe the image in detail.", "What might be the purpose of this gathering?",
    "Can you explain what is happening in this scene?", "What are the potential risks in this situation?",
    "Write a short story inspired by the picture.",
]
SENTENCES = [
    "The image shows a busy street with several cars parked along the sidewalk.",
    "A young woman is standing near the window, holding a cup of coffee.",
    "In the background, there are tall buildings and a cloudy sky.",
    "The scene suggests a calm morning in a small town.",
    "There are 3 dogs playing in the grass, and 2 of them are brown.",
    "这是一张照片，显示了一只猫坐在窗台上。",
    "Overall, the atmosphere is relaxed and friendly 😊.",
    "It is important to stay safe:  keep a distance,   wear a helmet, and follow the signs.",
]
CODE = [
    "```python\ndef area(r):\n    return 3.14159 * r * r\n\n\nprint(area(2))\n```",
    "```bash\nfor f in *.jpg; do\n    convert \"$f\"  -resize 50% \"small/$f\"\ndone\n```",
    "Here is the fix:\n\n```js\nif (x) {\n        return  y;\n}\n```\nThat    should work.",
]
INSTRUCTIONS = [
    "Give three tips for staying healthy.", "Translate to French: I like apples.", "Write a haiku about the sea.",
    "What is the capital of Japan?", "Explain recursion to a child.", "Write a Python function that adds two numbers.",
    "List the first five prime numbers.", "用中文介绍一下你自己。", "Summarise this:    the  quick brown fox.",
]


def _answer(rng: random.Random, long: bool) -> str:
    if long:
        parts = rng.sample(SENTENCES, rng.randint(1, 4))
        if rng.random() < 0.3:
            parts.append(rng.choice(CODE))
        sep = rng.choice([" ", "\n\n", "\n", "  "])
        return sep.join(parts)
    return rng.choice(SHORT_ANSWERS)


def realistic_records(n: int, seed: int = 0) -> list[dict]:
    """`n` records in LLaVA's JSON shape (`id`, optional `image`, `conversations` of human/gpt turns)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = ("vqa", "chat", "text", "code")[i % 4]
        turns: list[dict] = []
        rounds = rng.choice([1, 1, 2, 3]) if kind != "code" else 1
        for r in range(rounds):
            if kind == "vqa":
                q, a = f"{rng.choice(QUESTIONS)}\n{VQA_SUFFIX}", _answer(rng, long=False)
            elif kind == "chat":
                q, a = rng.choice(LONG_QUESTIONS + QUESTIONS), _answer(rng, long=rng.random() < 0.7)
            elif kind == "text":
                q, a = rng.choice(INSTRUCTIONS), _answer(rng, long=rng.random() < 0.5)
            else:
                q, a = rng.choice(INSTRUCTIONS[5:6] + ["Fix my code:\n    x  =  1"]), rng.choice(CODE)
            turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        rec: dict = {"id": f"rec-{i}", "conversations": turns}
        if kind in ("vqa", "chat") or (kind == "code" and rng.random() < 0.5):
            rec["image"] = f"img{i % 3}.png"
            first = turns[0]["value"]
            # LLaVA data writes the tag first or last; both LLaVA and litdata move it to the front.
            turns[0]["value"] = f"<image>\n{first}" if rng.random() < 0.7 else f"{first}\n<image>"
        out.append(rec)
    return out
