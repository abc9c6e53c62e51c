"""Packing: every document lands whole in exactly one sequence, the expanded-length bound holds, and the
result depends only on the input and the seed."""

import random

import numpy as np
import pytest

from litdata.config import PACKING_ALGORITHMS, PackSettings
from litdata.pack.binpack import fill_bins
from litdata.pack.packer import make_packer
from litdata.records import Document, Provenance
from litdata.records.document import ImageBlob


def make_docs(n, seed=0, max_len=1500, image_every=3):
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        length = rng.randint(2, max_len)
        images = tuple(ImageBlob(ext="png", data=b"x") for _ in range(i % image_every == 0))
        docs.append(Document(provenance=Provenance(source="s", index=i, id=str(i)),
                             tokens=np.full(length, i, np.int32), classes=np.zeros(length, np.uint8),
                             weights=np.zeros(length, np.float32), images=images))
    return docs


def pack(docs, **kw):
    settings = PackSettings(**{"seq_len": 4096, "image_tokens": 576, "window": 500, "carry": 32, **kw})
    return list(make_packer(settings).run(docs))


@pytest.fixture(params=PACKING_ALGORITHMS)
def algorithm(request):
    return request.param


def test_no_document_split_or_lost_and_bound_respected(algorithm):
    docs = make_docs(3000)
    seqs = pack(docs, algorithm=algorithm)
    placed = sorted(d.provenance.index for s in seqs for d in s.docs)
    assert placed == list(range(3000))
    for s in seqs:
        assert s.length == sum(d.expanded_length(576) for d in s.docs) <= 4096


def efficiency(seqs, seq_len=4096):
    return sum(s.length for s in seqs) / (len(seqs) * seq_len)


def test_efficiency_is_high_with_windows(algorithm):
    assert efficiency(pack(make_docs(5000), algorithm=algorithm)) > 0.99


def test_fill_beats_best_fit_on_llava_shaped_lengths():
    """Mostly one image plus a short exchange (665-865 positions), a few text-only documents: decreasing
    heuristics end sequences early. (The workload of benchmarks/bench_packing.py shows 97.9% vs 94.2%.)"""
    rng = random.Random(1)
    lengths = [rng.randint(665, 865) if rng.random() < 0.94 else rng.randint(200, 1478) for _ in range(4000)]
    docs = [Document(provenance=Provenance(source="s", index=i, id=None), tokens=np.zeros(n, np.int32),
                     classes=np.zeros(n, np.uint8), weights=np.zeros(n, np.float32))
            for i, n in enumerate(lengths)]
    fill = efficiency(pack(docs, algorithm="fill", window=2000, carry=64))
    best = efficiency(pack(docs, algorithm="best-fit", window=2000, carry=64))
    assert fill > best and fill > 0.955


def test_fill_bins_finds_exact_fills_and_keeps_the_rest():
    bins, rest = fill_bins([4, 6, 5, 3, 2, 3, 3, 4], 10)
    assert sorted(sorted([4, 6, 5, 3, 2, 3, 3, 4][i] for i in b) for b in bins) == [[2, 3, 5], [3, 3, 4], [4, 6]]
    assert rest == []
    bins, rest = fill_bins([9, 8, 7, 1, 1, 1, 5, 5], 10, keep=3)
    assert 0 < len(rest) <= 3 and sorted([i for b in bins for i in b] + rest) == list(range(8))
    with pytest.raises(ValueError, match="longer"):
        fill_bins([11], 10)


def test_deterministic_for_a_seed_and_seed_changes_order(algorithm):
    docs = make_docs(2000)
    key = lambda seqs: [[d.provenance.index for d in s.docs] for s in seqs]  # noqa: E731
    run = lambda seed: key(pack(docs, seed=seed, algorithm=algorithm))  # noqa: E731
    assert run(1) == run(1)
    assert run(1) != run(2)
    assert sorted(map(tuple, run(1))) == sorted(map(tuple, run(2)))


def test_a_document_over_seq_len_is_a_bug_upstream(algorithm):
    with pytest.raises(ValueError, match="longer than seq_len"):
        pack(make_docs(1, max_len=5000, image_every=1), seq_len=100, algorithm=algorithm)
