"""Sentence shapes run in linear time on adversarial user text (issue 12, item 1).

Every pattern in litdata/spans/shapes.py is applied to user turns, so a pattern that backtracks
catastrophically lets one 116-character question hang `compile` and `templates`. The timing runs in a child
process, so that a pattern which hangs fails this test at the deadline instead of hanging the suite. It
measures CPU time (best of 5), not wall time, because the machine running the tests may be busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litdata.spans.shapes import prefix_shape, sentence_shape

ROOT = Path(__file__).resolve().parents[2]

# Each family is (template, unit): the string is template.format(unit * n). All of them are unclosed or end in
# a character that makes the match fail, which is what makes a backtracking pattern try every reading.
FAMILIES = {
    "unclosed box of ones": ("which ids are in ({} and which are not?", "1,"),
    "unclosed box of decimals": ("points [{}", "1.5, 2,5 ,"),
    "dash list after a colon": ("pick one of these: {}done?", "- "),
    "placeholder tail": ("the answer is: {}x", "<num> ."),
    "number runs": ("{}a", "1,2.3,"),
    "open brackets": ("{}", "( [ 1, "),
}

CHILD = r"""
import json, sys, time
from litdata.spans.shapes import prefix_shape, sentence_shape
families, sizes = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def cost(text):
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        prefix_shape(sentence_shape(text))
        best = min(best, time.process_time() - t)
    return best
print(json.dumps({name: [cost(template.format(unit * n)) for n in sizes] for name, (template, unit) in families.items()}))
"""


def _in_child(code: str, *args: str, timeout: float) -> str:
    """stdout of `code` run in a fresh interpreter on this tree; fails the test when it runs past `timeout`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              timeout=timeout, env=env, check=True).stdout
    except subprocess.TimeoutExpired:
        pytest.fail(f"shaping adversarial strings did not finish in {timeout:.0f} s: a pattern backtracks "
                    "catastrophically")


def test_the_strings_from_the_issue_are_shaped_at_once():
    # 40 ones in an unclosed parenthesis (outside a box "1,1" is one number with a decimal comma), and a dash
    # list after a colon: both hung before.
    code = (
        "from litdata.spans.shapes import prefix_shape, sentence_shape\n"
        "print(sentence_shape('Which ids are in (' + ','.join(['1'] * 40) + ' and which are not?'))\n"
        "print(prefix_shape(sentence_shape('Pick one of these: ' + '- ' * 40 + 'done?')))\n"
    )
    assert _in_child(code, timeout=90).splitlines() == [
        "which ids are in (<num> and which are not?", "pick one of these: <arg>"
    ]


def test_boxes_and_constant_tails_keep_their_shapes():
    assert sentence_shape("Where is it? (1,1, 2,5)") == "where is it? <box>"
    assert sentence_shape("Region: [0.12, 0.34, 0.56, 0.78].") == "region: <box>."
    assert sentence_shape("(1.5) and (1, 2") == "(<num>) and (<num>, <num>"
    assert prefix_shape("the box is here: <box> .") is None  # a constant tail is not an argument
    assert prefix_shape("the box is here: a red <box>") == "the box is here: <arg>"


def test_shapes_take_linear_time_on_adversarial_strings():
    """16 times the input may cost at most 64 times the time (linear: ~16; quadratic: ~256; the old patterns:
    no answer at all), and the longest string (~100k characters) well under a second."""
    small, large = 400, 6400
    out = _in_child(CHILD, json.dumps(FAMILIES), json.dumps([small, large]), timeout=90)
    for name, (t_small, t_large) in json.loads(out).items():
        assert t_large < 1.0, f"{name}: {t_large:.3f} s for {large} repetitions"
        # 1 ms of slack: below that, timer and scheduler noise dominate the ratio on a busy machine.
        assert t_large <= 64 * t_small + 1e-3, f"{name}: {t_small:.6f} s -> {t_large:.6f} s for 16x the input"
