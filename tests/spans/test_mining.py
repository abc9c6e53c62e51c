"""Template mining: shapes, thresholds, user lists, streaming, the table file and the templates command."""

from __future__ import annotations

import argparse
import json
import random
import sys
import types

import polars as pl
import pytest

from litdata.commands.span_options import add_mining_arguments, mining_settings_from_args
from litdata.records import Conversation, Provenance, Role, Turn
from litdata.spans import MiningSettings, mine_templates
from litdata.spans.shapes import prefix_shape, sentence_shape

SHORT = "Answer the question using a single word or phrase."
LETTER = "Answer with the option's letter from the given choices directly."
REGION = "Please provide a short description for this region: [{:.2f}, {:.2f}, {:.2f}, {:.2f}]."
BBOX = "Please provide the bounding box coordinate of the region this sentence describes: {}."
PHRASES = ["a red circle on the left", "the man in a blue shirt", "second car from the right", "white dog"]
OBJECTS = ["bus", "cat", "kite", "table", "umbrella", "clock", "horse", "boat", "pizza", "laptop"]


def conv(index: int, *user_turns: str) -> Conversation:
    turns: list[Turn] = []
    for text in user_turns:
        turns += [Turn(role=Role.USER, text=text), Turn(role=Role.ASSISTANT, text="Some answer.")]
    return Conversation(provenance=Provenance(source="mix.jsonl", index=index, id=f"r{index}"), turns=tuple(turns))


def name(i: int) -> str:
    """A made-up word per integer (numbers would all collapse into <num>)."""
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += "abcdefghijklmnopqrstuvwxyz"[r]
        if not i:
            return "q" + letters


def llava_mix(n: int, seed: int = 0) -> list[Conversation]:
    """A LLaVA-665K-shaped mix: VQA with the short-answer template, multiple choice with options and the
    letter template, region captions with boxes, referring expressions, and free conversation."""
    rng = random.Random(seed)

    def word() -> str:  # numbers would collapse into <num>, so ordinary sentences differ by made-up names
        return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=7))

    out = []
    for i in range(n):
        obj, other = rng.choice(OBJECTS), rng.choice(OBJECTS)
        question = f"What color is the {obj} called {word()} next to the {other}?"
        kind = i % 5
        if kind == 0:
            text = f"<image>\n{question}\n{SHORT}"
        elif kind == 1:
            text = f"<image>\n{question}\nA. {word()}\nB. {word()}\n{LETTER}"
        elif kind == 2:
            text = "<image>\n" + REGION.format(*(rng.random() for _ in range(4)))
        elif kind == 3:
            text = "<image>\n" + BBOX.format(f"{rng.choice(PHRASES)} {word()}")
        else:
            text = f"<image>\nDescribe what the {obj} {word()} is doing: is it moving or still?"
        out.append(conv(i, text, f"Is the {obj} {word()} bigger than the {other}?"))
    return out


def test_parametric_templates_collapse_into_one_shape():
    a = sentence_shape(REGION.format(0.12, 0.34, 0.56, 0.78))
    b = sentence_shape(REGION.format(0.5, 0.1, 0.9, 1.0))
    assert a == b == "please provide a short description for this region: <box>."
    assert sentence_shape("What  is in\tthe image 3?") == "what is in the image <num>?"
    first, second = (sentence_shape(BBOX.format(p)) for p in PHRASES[:2])
    assert first != second and prefix_shape(first) == prefix_shape(second)
    assert (
        prefix_shape(first) == "please provide the bounding box coordinate of the region this sentence describes: <arg>"
    )


def test_short_label_prefixes_are_not_templates():
    # "Question: ..." must never make every question a template.
    assert prefix_shape(sentence_shape("Question: what is the man holding?")) is None
    assert prefix_shape(sentence_shape("Where is it: left or right?")) is None


def test_mining_marks_planted_templates_and_no_ordinary_question():
    table = mine_templates(llava_mix(500), MiningSettings())
    shapes = table.template_shapes()
    assert shapes == {
        sentence_shape(SHORT),
        sentence_shape(LETTER),
        "please provide a short description for this region: <box>.",
        prefix_shape(sentence_shape(BBOX.format("x y z"))),
    }
    row = table.frame.filter(pl.col("shape") == sentence_shape(SHORT)).row(0, named=True)
    assert row["count"] == 100 and row["record_frac"] == pytest.approx(0.2)
    assert row["why"] == "frac 0.2 >= 0.01 and count 100 >= 5" and row["example"] == SHORT
    # Option lines are their own sentences: the letter template is found after them.
    example = table.frame.filter(pl.col("shape") == sentence_shape(LETTER))["example"].item()
    assert example == LETTER


def test_min_frac_and_min_count_rules():
    data = [conv(i, f"Unique question {name(i)}?" + (" Be brief." if i < 6 else "")) for i in range(100)]
    assert sentence_shape("Be brief.") in mine_templates(data, MiningSettings()).template_shapes()
    assert mine_templates(data, MiningSettings(min_frac=0.07)).template_shapes() == frozenset()
    assert mine_templates(data, MiningSettings(min_count=7)).template_shapes() == frozenset()
    why = mine_templates(data, MiningSettings(min_count=7)).frame.filter(pl.col("shape") == "be brief.")["why"]
    assert why.to_list() == ["below threshold (frac 0.06, count 6)"]


def test_top_k_marks_the_most_frequent_shapes():
    data = [
        conv(i, "Alpha here." if i < 30 else "Beta here." if i < 50 else f"Question {name(i)}, anyone?")
        for i in range(1000)
    ]
    strict = MiningSettings(min_frac=0.5)
    assert mine_templates(data, strict).template_shapes() == frozenset()
    table = mine_templates(data, MiningSettings(min_frac=0.5, top_k=1))
    assert table.template_shapes() == {"alpha here."}
    assert table.frame.row(0, named=True)["why"] == "rank 1 <= top-k 1 and count 30 >= 5"
    # A rank alone is not enough below the count floor.
    assert mine_templates(data, MiningSettings(min_frac=0.5, top_k=2, min_count=25)).template_shapes() == {
        "alpha here."
    }


def test_user_lists_override_mining_both_ways(tmp_path):
    (tmp_path / "yes.txt").write_text("# always\nIs it moving or still?\n", encoding="utf-8")
    (tmp_path / "no.txt").write_text(SHORT + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_mining_arguments(parser)
    args = parser.parse_args(
        ["--task-templates", str(tmp_path / "yes.txt"), "--not-templates", str(tmp_path / "no.txt")]
    )
    settings = mining_settings_from_args(args)
    table = mine_templates(llava_mix(200), settings)
    shapes = table.template_shapes()
    assert "is it moving or still?" in shapes and sentence_shape(SHORT) not in shapes
    why = dict(zip(table.frame["shape"], table.frame["why"]))
    assert why["is it moving or still?"] == "user list" and why[sentence_shape(SHORT)] == "user not-templates list"


def test_user_list_works_with_mining_off(tmp_path):
    (tmp_path / "yes.txt").write_text("Describe this region: <arg>\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_mining_arguments(parser)
    args = parser.parse_args(["--task-templates", str(tmp_path / "yes.txt"), "--no-mine-templates"])

    def must_not_be_read():
        raise AssertionError("mining is off: the input must not be read")
        yield

    table = mine_templates(must_not_be_read(), mining_settings_from_args(args))
    assert table.template_shapes() == {"describe this region: <arg>"}
    assert table.n_records == 0 and table.frame["count"].to_list() == [0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--template-min-frac", "1.5"], "--template-min-frac must be between 0 and 1"),
        (["--template-min-count", "0"], "--template-min-count must be >= 1"),
        (["--template-top-k", "0"], "--template-top-k must be >= 1"),
        (["--task-templates", "/nonexistent/list.txt"], "--task-templates /nonexistent/list.txt: cannot read"),
    ],
)
def test_bad_options_raise_one_line_value_errors(argv, message):
    parser = argparse.ArgumentParser()
    add_mining_arguments(parser)
    with pytest.raises(ValueError, match=message) as info:
        mining_settings_from_args(parser.parse_args(argv))
    assert "\n" not in str(info.value)


def test_counts_do_not_depend_on_chunk_size():
    rng = random.Random(5)
    pool = [
        conv(120 + i, f"Pool sentence {name(rng.randrange(40))}. Other {name(rng.randrange(9))}?") for i in range(200)
    ]
    data = llava_mix(120, seed=3) + pool
    frames = [mine_templates(data, MiningSettings(chunk_size=n)).frame for n in (1, 7, 1000)]
    assert frames[0].equals(frames[1]) and frames[1].equals(frames[2])
    assert len(frames[0]) > 40 and frames[0]["count"].sum() > 400


def test_mining_reads_a_generator_once_in_chunks():
    consumed = []

    def stream():
        for c in llava_mix(50):
            consumed.append(c.provenance.index)
            yield c

    table = mine_templates(stream(), MiningSettings(chunk_size=8))
    assert consumed == list(range(50)) and table.n_records == 50


def test_parquet_bytes_are_deterministic(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    mine_templates(llava_mix(300, seed=1), MiningSettings(chunk_size=64)).write_parquet(a)
    table = mine_templates(llava_mix(300, seed=1), MiningSettings(chunk_size=1000))
    table.write_parquet(b)
    assert a.read_bytes() == b.read_bytes()
    assert table.sha256() == __import__("hashlib").sha256(b.read_bytes()).hexdigest()
    back = pl.read_parquet(b)
    assert back.columns == ["shape", "example", "count", "record_frac", "decision", "why"]
    assert back["count"].to_list() == sorted(back["count"].to_list(), reverse=True)
    assert table.settings_dict()["templates"] == 4 and table.settings_dict()["records"] == 300


def test_top_rows_are_the_most_frequent():
    table = mine_templates(llava_mix(200), MiningSettings())
    top = table.top(3)
    assert len(top) == 3 and top["count"].to_list() == table.frame["count"].head(3).to_list()


def _fake_reader(monkeypatch, path):
    """Stand-in for litdata.read.read_sources: reads LLaVA JSONL lines into Conversations."""

    def read_sources(sources, **_):
        for source in sources:
            with open(source, encoding="utf-8") as f:
                lines = f.read().splitlines()
            for i, line in enumerate(lines):
                rec = json.loads(line)
                role = {"human": Role.USER, "gpt": Role.ASSISTANT}
                turns = tuple(Turn(role=role[t["from"]], text=t["value"]) for t in rec["conversations"])
                yield Conversation(provenance=Provenance(source=source, index=i, id=rec["id"]), turns=turns)

    fake = types.SimpleNamespace(read_sources=read_sources, source_format=lambda source: "jsonl")
    monkeypatch.setitem(sys.modules, "litdata.read", fake)


def _write_llava_jsonl(path, n):
    with open(path, "w", encoding="utf-8") as f:
        for c in llava_mix(n):
            conversations = [{"from": "human" if t.role is Role.USER else "gpt", "value": t.text} for t in c.turns]
            f.write(json.dumps({"id": c.provenance.id, "image": "a.jpg", "conversations": conversations}) + "\n")


def test_templates_command_prints_and_writes_the_table(tmp_path, monkeypatch, capsys):
    from litdata.commands import templates

    src, out = tmp_path / "mix.jsonl", tmp_path / "t.parquet"
    _write_llava_jsonl(src, 100)
    _fake_reader(monkeypatch, src)
    parser = argparse.ArgumentParser()
    templates.add_arguments(parser)
    assert templates.run(parser.parse_args([str(src), "--out", str(out), "--top", "5"])) == 0
    printed = capsys.readouterr().out
    assert "answer the question using a single word or phrase." in printed
    assert "4 template shapes" in printed and "100 records" in printed
    assert pl.read_parquet(out).filter(pl.col("decision") == "template").height == 4


def test_templates_command_bad_option_exits_2(tmp_path, monkeypatch, capsys):
    from litdata.commands import templates

    src = tmp_path / "mix.jsonl"
    _write_llava_jsonl(src, 3)
    _fake_reader(monkeypatch, src)
    parser = argparse.ArgumentParser()
    templates.add_arguments(parser)
    # The command raises like every other command; litdata/cli.py prints the one line and exits 2.
    from litdata.cli import UsageError

    with pytest.raises(UsageError, match="--template-min-frac must be between 0 and 1"):
        templates.run(parser.parse_args([str(src), "--template-min-frac", "2"]))


DEMO = __import__("pathlib").Path(__import__("litdata").__file__).parent / "demo" / "data"


def test_demo_data_every_planted_template_marked_and_no_informative_sentence():
    from litdata.read import read_sources
    from litdata.spans import TurnLabeler

    truth = json.loads((DEMO / "ground_truth.json").read_text(encoding="utf-8"))
    sources = [str(DEMO / name) for name in truth["files"]]
    conversations = [r for r in read_sources(sources) if isinstance(r, Conversation)]
    table = mine_templates(conversations, MiningSettings())
    labeler = TurnLabeler(template_shapes=table.template_shapes(), harmful=None)
    planted = labeler.label([(Role.USER, s) for s in truth["template_sentences"]])
    assert [len(labels) for labels in planted] == [1] * len(truth["template_sentences"])
    assert all(labels[0].start == 0 for labels in planted)
    informative = labeler.label([(Role.USER, s) for s in truth["informative"]])
    assert [s for s, labels in zip(truth["informative"], informative) if labels] == []
    assert len(table.template_shapes()) == len(truth["templates"])


def test_templates_command_on_the_demo_file_with_the_real_reader(tmp_path, capsys):
    from litdata.commands import templates

    parser = argparse.ArgumentParser()
    templates.add_arguments(parser)
    out = tmp_path / "templates.parquet"
    assert templates.run(parser.parse_args([str(DEMO / "llava_demo.json"), "--out", str(out)])) == 0
    captured = capsys.readouterr()
    assert "5 template shapes" in captured.out and "rejected" in captured.err
    assert set(pl.read_parquet(out).filter(pl.col("decision") == "template")["example"]) >= {
        "Provide a one-sentence caption for the provided image."
    }


def test_lossy_counting_bounds_memory_and_keeps_frequent_shapes_exactly_enough():
    """With buckets of 100 records: 2,000 records each with a unique question plus a template in 10% of them.
    The unique shapes are dropped as buckets close; the template survives with a count low by at most
    records / bucket, and the result does not depend on the chunk size."""
    import polars as pl

    from litdata.spans.mining import ShapeCounter

    def run(chunk):
        counter = ShapeCounter(bucket_records=100)
        peak = 0
        for start in range(0, 2000, chunk):
            recs = list(range(start, min(2000, start + chunk)))
            shapes = [f"unique question {r}?" for r in recs] + ["answer briefly." for r in recs if r % 10 == 0]
            owners = recs + [r for r in recs if r % 10 == 0]
            counter.add(pl.DataFrame({"record": owners, "shape": shapes, "example": shapes},
                                     schema={"record": pl.Int64, "shape": pl.String, "example": pl.String}))
            counter._merge()
            peak = max(peak, len(counter._total))
        return counter.result(), peak

    result, peak = run(37)
    counts = dict(zip(result["shape"], result["count"]))
    assert 200 - 2000 // 100 <= counts["answer briefly."] <= 200
    assert peak < 300  # never near the 2,000 distinct questions
    assert run(1000)[0].sort("shape").equals(result.sort("shape"))
