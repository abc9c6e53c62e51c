"""The encoding stage of one process (`Encoder`): `encode_batches`, which runs the tokenizer's native call of one
batch in a second thread beside the Python work of its neighbours, gives exactly what `encode_batch` gives batch
by batch, surfaces a failure as it comes, and leaves no thread behind."""

from __future__ import annotations

import threading

import pytest

from litdata.classes import class_weights
from litdata.config import HarmfulSettings
from litdata.demo import DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR
from litdata.encode import Encoder, EncodeSpec
from litdata.read import read_sources
from litdata.records import Conversation, Document, Provenance, Reject, RejectReason, Role, Turn
from litdata.spans.harmful import DEFAULT_LEXICON, read_lexicon
from litdata.tokenize.batch import TokenizeJob


def _spec(**overrides) -> EncodeSpec:
    base = dict(tokenizer=str(DEMO_TOKENIZER_DIR), template="vicuna_v1", weights=class_weights("lit"), seq_len=160,
                image_tokens=8, overflow="drop", image_root=str(DEMO_IMAGE_ROOT), max_pixels=10**8,
                template_shapes=frozenset({"answer the question using a single word or phrase ."}),
                harmful=HarmfulSettings(phrases=tuple(read_lexicon(DEFAULT_LEXICON))))  # as the command line
    return EncodeSpec(**(base | overrides))


def _batches(size: int) -> list[list]:
    """The demo's records (images, planted problems) with one whose question the bundled lexicon flags."""
    items = list(read_sources([str(s) for s in DEMO_SOURCES]))
    flagged = Conversation(provenance=Provenance(source="flagged.json", index=0, id="flagged"), turns=(
        Turn(role=Role.USER, text="Tell me how to make a bomb. What is in the picture?"),
        Turn(role=Role.ASSISTANT, text="I cannot help with that.")))
    items.insert(len(items) // 2, flagged)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _seen(item: Document | Reject) -> tuple:
    """Everything a Document or Reject carries on to the packer and the rejects/audit files."""
    if isinstance(item, Reject):
        return ("reject", item.provenance, item.reason, item.message, item.audit)
    return ("doc", item.provenance, item.tokens.tobytes(), item.classes.tobytes(), item.weights.tobytes(),
            tuple(b.sha256 for b in item.images), item.meta, item.image_counts, item.audit, item.truncated_from)


def _tokenize_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("litdata-tokenize")]


@pytest.mark.parametrize("size", [1, 7, 64])
def test_encode_batches_gives_what_encode_batch_gives_batch_by_batch(size):
    enc = Encoder(_spec())
    batches = _batches(size)
    sequential = [[_seen(x) for x in enc.encode_batch(b)] for b in batches]
    overlapped = [[_seen(x) for x in out] for out in enc.encode_batches(iter(batches))]
    assert overlapped == sequential
    # The demo's planted problems and its images are all in play: documents with images, rejects of several
    # reasons (too long at this --seq-len among them), and harmful spans masked in place.
    flat = [x for b in sequential for x in b]
    reasons = {x[2] for x in flat if x[0] == "reject"}
    assert RejectReason.TOO_LONG in reasons and len(reasons) >= 3
    assert any(x[0] == "doc" and x[5] for x in flat) and any(x[0] == "doc" and x[8] for x in flat)
    assert not _tokenize_threads()


def test_a_failing_native_call_surfaces_from_encode_batches_and_no_thread_stays(monkeypatch):
    enc = Encoder(_spec())
    run_native = TokenizeJob.run_native
    calls = []

    def third_call_fails(job):
        calls.append(job)
        if len(calls) == 3:
            raise RuntimeError("tokenizer failed on batch 3")
        run_native(job)

    monkeypatch.setattr(TokenizeJob, "run_native", third_call_fails)
    got = []
    with pytest.raises(RuntimeError, match="batch 3"):
        for out in enc.encode_batches(iter(_batches(8))):
            got.append(out)
    assert len(got) == 2  # the batches before the failing one came out, in order
    assert not _tokenize_threads()


def test_a_consumer_that_stops_early_leaves_no_thread_behind():
    enc = Encoder(_spec())
    stream = enc.encode_batches(iter(_batches(4)))
    first = next(stream)
    assert len(first) == 4
    stream.close()
    assert not _tokenize_threads()
