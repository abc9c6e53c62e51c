"""The same inputs and options give the same bytes as the digests checked in before the package was reorganised
(issue 11): shards, rejects, templates, audit and (machine-neutral) manifest, for the demo, the demo under other
options (vit, LP packing, tiles, truncation, small shards) and the benchmark workload with two workers."""

from __future__ import annotations

import json

from tests.helpers.output_digests import FIXTURE, compile_all


def test_outputs_equal_the_checked_in_digests(tmp_path):
    expected = json.loads(FIXTURE.read_text())
    got = compile_all(tmp_path)
    assert got.keys() == expected.keys()
    for case, files in expected.items():
        assert got[case] == files, case
