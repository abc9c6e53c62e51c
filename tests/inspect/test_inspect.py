"""`litdata inspect`: the terminal view (plain text, tagged by class) and the self-contained HTML report."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from litdata.classes import TokenClass
from litdata.demo import DEMO_IMAGE_ROOT, DEMO_TOKENIZER_DIR
from litdata.inspect import CompiledFolder, Decoder, document_spans
from litdata.inspect.html import SECTIONS
from litdata.inspect.stats import sample_positions
from tests.helpers.compile import compile_cli

TAG = re.compile(r"⟦([a-z_]+)(?: ×([0-9.]+))?⟧")

TINY = [
    {"id": "r-script", "image": "coco/000000.png", "conversations": [
        {"from": "human", "value": '<image>\n<script>alert("x")</script> What colour is the square?'},
        {"from": "gpt", "value": "Blue."}]},
    {"id": "r-plain", "conversations": [
        {"from": "human", "value": "Name a prime number larger than ten."},
        {"from": "gpt", "value": "Eleven is one."}]},
    {"id": "r-three", "conversations": [
        {"from": "human", "value": "Spell the word cat backwards."},
        {"from": "gpt", "value": "It is tac."}]},
]


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory) -> Path:
    """Three records, instruction weighted 0.5, one sequence per shard (so there are several shards)."""
    root = tmp_path_factory.mktemp("tiny")
    src = root / "src.json"
    src.write_text(json.dumps(TINY))
    out = root / "out"
    assert compile_cli("compile", src, "--out", out, "--image-root", DEMO_IMAGE_ROOT, "--weight", "instruction=0.5",
                       "--no-mine-templates", "--max-shard-sequences", "1", "--seq-len", "700", "--no-progress") == 0
    return out


def inspect(capsys, *args) -> tuple[int, str]:
    from litdata.cli import main

    capsys.readouterr()
    rc = main(["inspect", *[str(a) for a in args]])
    return rc, capsys.readouterr().out


def tagged(line: str) -> list[tuple[str, str | None, str]]:
    """(class, weight shown or None, text) for each span of a plain-text document line."""
    parts = TAG.split(line)
    return [(parts[i], parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)]


def document_text(out: str, doc_id: str) -> str:
    """The decoded body printed under a document's header line."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if f"id {doc_id} " in line)
    body = []
    for line in lines[at + 1:]:
        if line.startswith(("── document", "═══")):
            break
        body.append(line)
    return "\n".join(body)


def test_plain_view_tags_every_span_with_its_class(tiny_out, capsys):
    rc, out = inspect(capsys, tiny_out, "--document", "r-script", "--no-color")
    assert rc == 0
    spans = tagged(document_text(out, "r-script"))
    assert [c for c, _, _ in spans] == ["markup", "system", "markup", "image", "instruction", "markup", "response"]
    by_class = {c: (w, t) for c, w, t in spans}
    assert by_class["system"][1].startswith("A chat between a curious user")
    assert by_class["image"] == (None, "[image 1: 576 tokens]")
    # instruction carries the 0.5 weight it was compiled with; 0/1 weights are not repeated on every span
    assert by_class["instruction"] == ("0.5", '\n<script>alert("x")</script> What colour is the square?')
    assert by_class["response"] == (None, " Blue.</s>")
    assert "legend (lit, as compiled weights)" in out and "⟦instruction⟧ w=0.5" in out


def test_sequences_are_printed_in_shard_order_with_document_boundaries(tiny_out, capsys):
    rc, out = inspect(capsys, tiny_out, "--sequences", "1", "--no-color")
    assert rc == 0
    assert out.count("═══ shard-") == 1 and "═══ shard-000000.tar/" in out
    headers = [line for line in out.splitlines() if line.startswith("── document")]
    assert [h.split(" · ")[0] for h in headers] == ["── document 1/2", "── document 2/2"]
    assert "id r-plain · src.json #1 · 78 tokens" in headers[0]
    rc, out = inspect(capsys, tiny_out, "--shard", "shard-000001.tar", "--no-color")
    assert "═══ shard-000001.tar/" in out and "id r-script" in out and "r-plain" not in out


def test_spans_carry_the_stored_classes_and_decode_back_to_the_document(demo_out):
    folder = CompiledFolder.open(demo_out)
    decoder = Decoder(folder.load_tokenizer())
    seq = next(folder.sequences())
    checked = 0
    for doc in seq.documents(folder.image_token_id):
        spans = document_spans(doc, decoder, image_token_id=folder.image_token_id)
        assert spans[0].start == 0 and spans[-1].stop == len(doc.tokens)
        assert all(a.stop == b.start for a, b in itertools.pairwise(spans))
        for s in spans:
            assert (doc.classes[s.start:s.stop] == int(s.cls)).all()
            assert (doc.weights[s.start:s.stop] == s.weight).all()
        images = [s for s in spans if s.image is not None]
        assert [s.image for s in images] == list(range(1, doc.meta.images + 1))
        assert all(s.cls is TokenClass.IMAGE and s.n_tokens == 1 for s in images)
        assert "".join("<image>" if s.image else s.text for s in spans) == decoder.text(doc.tokens)
        checked += 1
    assert checked == len(seq.metas) > 0


def test_document_option_finds_a_document_in_any_shard(demo_out, capsys):
    folder = CompiledFolder.open(demo_out)
    last = list(folder.sequences())[-1]
    wanted = last.metas[-1]
    rc, out = inspect(capsys, demo_out, "--document", wanted.id, "--no-color")
    assert rc == 0
    assert f"═══ {last.shard}/{last.key} ═══" in out
    assert f"id {wanted.id} · {Path(wanted.file).name} #{wanted.index} · {wanted.tokens} tokens" in out
    rc, out = inspect(capsys, demo_out, "--document", "no-such-id", "--no-color")
    assert rc == 1 and "no document with id 'no-such-id'" in out


def test_mode_option_shows_the_weights_another_mode_would_give(demo_out, capsys):
    folder = CompiledFolder.open(demo_out)
    doc_id = next(folder.sequences()).metas[0].id
    _, lit = inspect(capsys, demo_out, "--document", doc_id, "--no-color")
    _, vit = inspect(capsys, demo_out, "--document", doc_id, "--no-color", "--mode", "vit")
    assert "⟦instruction⟧ w=1" in lit and "⟦instruction⟧ w=0" in vit and "legend (vit weights)" in vit
    with_loss = [int(re.search(r"(\d+) with loss", o).group(1)) for o in (lit, vit)]
    assert with_loss[0] > with_loss[1] > 0


def test_a_moved_tokenizer_is_a_clear_usage_error(demo_out, tmp_path, capsys):
    moved = tmp_path / "out"
    shutil.copytree(demo_out, moved)
    m = json.loads((moved / "manifest.json").read_text())
    m["config"]["tokenizer"]["path"] = str(tmp_path / "gone")
    (moved / "manifest.json").write_text(json.dumps(m))
    from litdata.cli import main

    capsys.readouterr()
    assert main(["inspect", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "gone: no such file or directory" in err and "pass --tokenizer PATH" in err
    rc, out = inspect(capsys, moved, "--tokenizer", DEMO_TOKENIZER_DIR, "--no-color")
    assert rc == 0 and "⟦response⟧" in out


class Page(HTMLParser):
    """What the tests look at in the report: sections, figures, spans by class, articles, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures: dict[str, str] = {}
        self.swatches: list[str] = []
        self.span_classes: list[str] = []
        self.titles: list[str] = []
        self.articles: list[dict[str, str]] = []
        self.article_text: dict[str, str] = {}
        self._article: str | None = None
        self.scripts = 0
        self.rows: list[list[str]] = []
        self._fig: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "section":
            self.sections.append(a["id"])
        elif tag == "div" and "fig" in classes:
            self._fig = a["data-key"]
        elif tag == "b" and self._fig:
            self._cell = []
        elif tag == "span" and "sw" in classes:
            self.swatches.append(a["data-cls"])
        elif tag == "span" and any(c.startswith("c-") for c in classes):
            self.span_classes.append(next(c[2:] for c in classes if c.startswith("c-")))
        elif tag == "article":
            self.articles.append(a)
            self.article_text[a["data-id"]] = ""
            self._article = a["data-id"]
        elif tag == "script":
            self.scripts += 1
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        if tag == "span" and "title" in a:
            self.titles.append(a["title"])

    def handle_endtag(self, tag):
        if tag == "article":
            self._article = None
        if tag == "b" and self._fig and self._cell is not None:
            self.figures[self._fig] = "".join(self._cell)
            self._fig, self._cell = None, None
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._article is not None:
            self.article_text[self._article] += data
        if self._cell is not None:
            self._cell.append(data)


def report(folder_path: Path, tmp_path: Path, capsys, *args) -> tuple[Path, Page]:
    out = tmp_path / "report.html"
    rc, printed = inspect(capsys, folder_path, "--html", out, *args)
    assert rc == 0 and f"wrote {out}" in printed
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    return out, page


def test_html_report_has_every_section_and_the_manifest_figures(demo_out, tmp_path, capsys):
    out, page = report(demo_out, tmp_path, capsys)
    m = json.loads((demo_out / "manifest.json").read_text())
    assert page.sections == list(SECTIONS)
    assert out.stat().st_size < 5 * 1024 * 1024
    num = lambda key: int(page.figures[key].replace(",", ""))
    assert num("records_read") == m["counts"]["records_read"]
    assert num("documents_written") == m["counts"]["documents_written"]
    assert num("rejected") == m["counts"]["rejected"] > 0
    assert num("sequences") == m["counts"]["sequences"]
    assert num("supervised_vit") == m["tokens"]["supervised_vit"]
    assert num("supervised_lit") == m["tokens"]["supervised_lit"]
    assert page.figures["packing_efficiency"] == f"{m['packing']['efficiency']:.2%}"
    # the per-source table is recomputed from the shards; its totals row must agree with the manifest
    total = next(r for r in page.rows if r and r[0] == "all sources")
    by_class = [int(x.replace(",", "")) for x in total[3:3 + len(TokenClass)]]
    assert by_class == [m["tokens"]["by_class"][c.label] for c in TokenClass]
    supervised = [int(x.replace(",", "")) for x in total[-3:-1]]
    assert supervised == [m["tokens"]["supervised_vit"], m["tokens"]["supervised_lit"]]
    for reason, n in m["counts"]["rejected_by_reason"].items():
        assert [reason, str(n)] in page.rows
    assert page.swatches == [c.label for c in TokenClass]
    assert len(page.articles) == 50
    assert {"markup", "system", "image", "task_template", "instruction", "response"} <= set(page.span_classes)
    assert "instruction · weight 1" in page.titles and "task_template · weight 0" in page.titles
    assert page.scripts == 1  # the report's own filter script, nothing else


def test_html_sample_is_deterministic_and_spread_over_shards(tiny_out, tmp_path, capsys):
    _, first = report(tiny_out, tmp_path, capsys, "--samples", "2")
    _, again = report(tiny_out, tmp_path, capsys, "--samples", "2")
    assert [a["data-id"] for a in first.articles] == [a["data-id"] for a in again.articles] == ["r-plain", "r-script"]
    assert sample_positions(10, 3).tolist() == [1, 5, 8]
    assert sample_positions(2, 5).tolist() == [0, 1]


def test_html_escapes_record_text(tiny_out, tmp_path, capsys):
    out, page = report(tiny_out, tmp_path, capsys)
    text = out.read_text(encoding="utf-8")
    assert "<script>alert" not in text
    # the record's markup arrives in the browser as text of the document, not as an element
    body = page.article_text["r-script"]
    assert '<script>alert("x")</script> What colour is the square?' in body
    assert "<s>A chat between" in body and body.endswith(" Blue.</s>")  # special tokens are text too
    assert page.scripts == 1
    assert "instruction · weight 0.5" in page.titles
    assert "instruction · weight 0.5 · token" in " ".join(page.titles)  # per-token hover on a small sample


def test_html_renders_in_headless_chromium(demo_out, tmp_path, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        # CI's setup (scripts/setup.sh) installs Chromium: there a missing browser is a setup bug, not a skip.
        assert not os.environ.get("CI"), "CI=true but no chromium: scripts/setup.sh should have installed it"
        pytest.skip("no chromium installed (apt-get install chromium); the HTML is still parsed by the other tests")
    from PIL import Image

    out, _ = report(demo_out, tmp_path, capsys, "--samples", "5")
    png = tmp_path / "r.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*flags, f"--screenshot={png}", "--window-size=1280,1600", out.as_uri()], check=True,
                   capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert '<span id="shown">5 of 5 documents</span>' in dom  # the filter script ran without errors
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1280)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, tables and class colours, not a blank page
