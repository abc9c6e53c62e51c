"""`--packing lp`: rounding the cutting-stock LP places every item once, within capacity, deterministically, never
below the proven bound, and at least as tight as subset-sum fill on LLaVA-shaped lengths."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.baselines.packing_bound import min_sequences_lower_bound
from litdata.pack.binpack import fill_bins, lp_bins
from litdata.verify.folder import verify
from tests.helpers.compile import compile_cli

pytest.importorskip("scipy")


def llava_like(n, seed):
    """Like benchmarks/bench_packing.py: mostly one image plus a short exchange (665-865), some text-only."""
    rng = random.Random(seed)
    return [rng.randint(665, 865) if rng.random() < 0.94 else rng.randint(289, 1478) for _ in range(n)]


def check(lengths, bins, rest, capacity):
    placed = sorted(i for b in bins for i in b) + rest
    assert sorted(placed) == list(range(len(lengths))), "an item lost or placed twice"
    assert all(b and sum(lengths[i] for i in b) <= capacity for b in bins)


@pytest.mark.parametrize("seed", range(6))
def test_every_item_once_within_capacity(seed):
    rng = random.Random(seed)
    capacity = rng.choice([100, 257, 4096])
    lengths = [rng.randint(0 if seed % 2 else 1, capacity) for _ in range(rng.randint(1, 300))]
    bins, rest = lp_bins(lengths, capacity)
    check(lengths, bins, rest, capacity)
    assert rest == []
    assert len(bins) >= min_sequences_lower_bound(np.array(lengths), capacity).sequences


def test_keep_leaves_at_most_keep_items_for_the_next_window():
    lengths = llava_like(1000, 3)
    bins, rest = lp_bins(lengths, 4096, keep=50)
    check(lengths, bins, rest, 4096)
    assert 0 < len(rest) <= 50


def test_ties_go_to_the_lower_index():
    assert lp_bins([5, 5, 5, 5], 10) == ([[0, 1], [2, 3]], [])
    assert lp_bins([], 10) == ([], [])


@pytest.mark.parametrize("capacity", [2048, 4096])
def test_at_least_as_tight_as_fill_and_near_the_bound_on_llava_shaped_lengths(capacity):
    lengths = llava_like(4000, capacity)
    bins, rest = lp_bins(lengths, capacity)
    check(lengths, bins, rest, capacity)
    bound = min_sequences_lower_bound(np.array(lengths), capacity).sequences
    fill, _ = fill_bins(lengths, capacity)
    assert bound <= len(bins) <= len(fill)
    assert len(bins) <= bound + 2, (len(bins), bound, len(fill))  # fill is ~1.5% over the bound at 4096


def test_deterministic_whatever_the_hash_seed(tmp_path):
    code = ("import json, random; from litdata.pack.binpack import lp_bins; from litdata.pack.packer import LPPacker;"
            "rng = random.Random(5); L = [rng.randint(300, 1400) for _ in range(600)];"
            "print(json.dumps(lp_bins(L, 4096, keep=20, initial=[[700, 700, 700]])))")  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                           env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(root)}).stdout
            for seed in (1, 2)]  # fmt: skip
    assert runs[0] == runs[1] and json.loads(runs[0])[0]


def test_a_missing_scipy_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # makes `from scipy.optimize import ...` fail
    with pytest.raises(ImportError, match=r"pip install 'litdata-lit\[lp\]'"):
        lp_bins([3, 4, 5], 10)


def test_longer_than_capacity_raises():
    with pytest.raises(ValueError, match="longer"):
        lp_bins([11], 10)


def test_compile_with_lp_verifies_and_is_the_same_for_one_and_two_workers(tmp_path):
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert compile_cli("demo", "--out", out, "--packing", "lp", "--workers", workers, "--no-progress") == 0
        assert verify(out).ok, verify(out).problems
        outs.append(out)
    m = json.loads((outs[0] / "manifest.json").read_text())
    assert m["config"]["packing"] == "lp" and m["config"]["pack_window"] == 8192
    for shard in m["shards"]:
        assert (outs[0] / shard["name"]).read_bytes() == (outs[1] / shard["name"]).read_bytes()
