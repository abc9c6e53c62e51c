"""Start-up cost: the command line must not import the heavy libraries before a command needs them.

A profile of `litdata compile` spent 3.7 s building the argument parser because it imported spaCy (and, through
thinc, torch); `litdata --help` waited for it too.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("spacy", "thinc", "torch", "transformers", "polars")


def _imported_after(code: str) -> list[str]:
    # The answer goes to stderr: stdout carries the help text.
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stderr.split()


def test_building_the_argument_parser_imports_no_heavy_library():
    assert _imported_after("from litdata.cli import build_parser; build_parser()") == []


def test_help_imports_no_heavy_library():
    code = "from litdata.cli import main\ntry:\n    main(['compile', '--help'])\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_the_classify_package_still_exports_its_names():
    from litdata.spans import MiningSettings, TemplateTable, TurnLabeler, mine_templates  # noqa: F401
