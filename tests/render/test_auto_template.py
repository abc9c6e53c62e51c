"""`--template auto` locates every message by construction (sentinels), never by searching the output, and
rejects a rendering it cannot locate."""

from __future__ import annotations

import pytest

from litdata.classes import TokenClass as C
from litdata.demo import DEMO_TOKENIZER_DIR
from litdata.records import Conversation, Provenance, Role, Turn
from litdata.render.auto import AutoTemplate
from litdata.render.base import TemplateError
from litdata.tokenize.tokens import load_tokenizer

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n' }}"
          "{% endfor %}")


def conv(*turns):
    return Conversation(provenance=Provenance(source="t.json", index=0, id="x"),
                        turns=tuple(Turn(role=r, text=t) for r, t in turns))


def tokenizer(template: str = CHATML):
    tok, _ = load_tokenizer(DEMO_TOKENIZER_DIR)
    tok.chat_template = template
    return tok


def runs(rendered):
    cls, text = rendered.char_classes, rendered.text
    out, start = [], 0
    for k in range(1, len(text) + 1):
        if k == len(text) or cls[k] != cls[start]:
            out.append((text[start:k], C(int(cls[start])).label))
            start = k
    return out


def test_a_short_answer_is_never_found_inside_the_markup():
    """`is` occurs in `<|im_start|>assistant`; searching for it there labelled the answer markup (issue 12, 9)."""
    r = AutoTemplate(tokenizer()).render(conv((Role.USER, "What"), (Role.ASSISTANT, "is")), [[], []])
    assert runs(r) == [("<|im_start|>user\n", "markup"), ("What", "instruction"),
                       ("<|im_end|>\n<|im_start|>assistant\n", "markup"), ("is<|im_end|>", "response"),
                       ("\n", "markup")]


def test_answers_equal_to_role_names_are_located():
    r = AutoTemplate(tokenizer()).render(conv((Role.USER, "user"), (Role.ASSISTANT, "assistant")), [[], []])
    assert ("assistant<|im_end|>", "response") in runs(r) and ("user", "instruction") in runs(r)


def test_a_trimming_template_is_followed_and_recorded():
    trim = CHATML.replace("m['content']", "m['content'] | trim")
    labels = [[(2, 6, C.TASK_TEMPLATE)], []]  # "What" inside "  What is it? "
    r = AutoTemplate(tokenizer(trim)).render(conv((Role.USER, "  What is it? "), (Role.ASSISTANT, "A cat.\n")), labels)
    assert r.text == "<|im_start|>user\nWhat is it?<|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n"
    assert r.trimmed == (0, 1)
    assert ("What", "task_template") in runs(r) and ("A cat.<|im_end|>", "response") in runs(r)


@pytest.mark.parametrize("template", [
    CHATML.replace("m['content']", "m['content'] | upper"),  # changes the text beyond trimming
    CHATML.replace("m['content'] + '<|im_end|>'", "m['content'] + '<|im_end|>' + m['content'][:1]"),  # twice
    "{% for m in messages %}{% if m['content'] | length > 3 %}LONG{% endif %}{{ m['content'] }}{% endfor %}",
])
def test_a_rendering_that_cannot_be_located_is_a_template_error(template):
    with pytest.raises(TemplateError):
        AutoTemplate(tokenizer(template)).render(conv((Role.USER, "Hello there"), (Role.ASSISTANT, "Hi")), [[], []])


def test_the_end_of_turn_token_after_an_answer_is_supervised_only_when_special():
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    r = AutoTemplate(tokenizer(template)).render(conv((Role.USER, "Hi"), (Role.ASSISTANT, "Yo")), [[], []])
    assert ("Yo</s>", "response") in runs(r) and ("</s>assistant: ", "markup") in runs(r)


def test_a_record_the_template_cannot_locate_is_rejected_with_template_error(tmp_path):
    """Through the compiler: the record becomes a `template_error` reject, the others are written."""
    import json
    import shutil

    from tests.helpers.compile import compile_cli

    folder = tmp_path / "tok"
    shutil.copytree(DEMO_TOKENIZER_DIR, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    # Upper-cases only messages that contain "shout": those cannot be located, the others can.
    config["chat_template"] = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}{% if 'shout' in "
                               "m['content'] %}{{ m['content'] | upper }}{% else %}{{ m['content'] }}{% endif %}"
                               "{{ '<|im_end|>\n' }}{% endfor %}")
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    src = tmp_path / "in.jsonl"
    rows = [{"id": f"r{i}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "is"}]}
            for i, q in enumerate(["What", "please shout", "Why"])]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert compile_cli("compile", src, "--tokenizer", folder, "--template", "auto", "--out", out,
                       "--no-progress") == 0
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"]) for r in rejects] == [("r1", "template_error")]
    assert json.loads((out / "manifest.json").read_text())["tokens"]["supervised_vit"] > 0


def test_a_tokenizer_folder_that_cannot_load_is_one_line_and_exit_2(tmp_path, capsys):
    from tests.helpers.compile import compile_cli

    src = tmp_path / "in.jsonl"
    src.write_text('{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}\n')
    (tmp_path / "empty").mkdir()
    assert compile_cli("compile", src, "--tokenizer", tmp_path / "empty", "--out", tmp_path / "out",
                       "--no-progress") == 2
    err = capsys.readouterr().err
    assert "no tokenizer.json" in err and "Traceback" not in err
