"""CompileStats counts supervised tokens from each document's class histogram; that must be exactly what
`supervised_count` (the rule `weigh` applies) gives, for every class mix and length, first token excluded."""

from __future__ import annotations

import numpy as np
import pytest

from litdata.classes import TokenClass, class_weights, weight_table
from litdata.records.document import Document
from litdata.records.provenance import Provenance
from litdata.stats import CompileStats
from litdata.weigh import supervised_count


def doc(classes: np.ndarray) -> Document:
    n = classes.shape[0]
    return Document(provenance=Provenance(source="s", index=0, id="0"), tokens=np.zeros(n, np.int32),
                    classes=classes.astype(np.uint8), weights=np.zeros(n, np.float32))


@pytest.mark.parametrize("seed", range(5))
def test_supervised_counts_are_supervised_count_summed_over_documents(seed):
    rng = np.random.default_rng(seed)
    docs = [doc(rng.integers(0, len(TokenClass), int(n))) for n in [0, 1, 2, *rng.integers(3, 3000, 40)]]
    stats = CompileStats(seq_len=4096)
    for d in docs:
        stats.add_document(d)
    for mode, got in (("vit", stats.supervised_vit), ("lit", stats.supervised_lit)):
        table = weight_table(class_weights(mode))
        assert got == sum(supervised_count(d.classes, table) for d in docs)
    assert stats.tokens_by_class.tolist() == np.bincount(np.concatenate([d.classes for d in docs]),
                                                         minlength=len(TokenClass)).tolist()


def test_a_class_id_outside_token_class_is_refused_naming_the_document():
    with pytest.raises(ValueError, match="s.*not a TokenClass"):
        CompileStats(seq_len=4096).add_document(doc(np.array([0, len(TokenClass)])))
