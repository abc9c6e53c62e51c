"""The benchmark baselines are honest: the LLaVA loop and datasets.map agree, the masks supervise exactly the
answers, and the packers never overfill or lose a document."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.baselines.hf_map import map_dataset, records_dataset
from benchmarks.baselines.llava import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LlavaPreprocessor, WithBos, mask_targets
from benchmarks.baselines.packing import (
    check_bins,
    efficiency,
    first_fit_decreasing,
    greedy_knapsack,
    greedy_knapsack_buffered,
    no_packing,
    subset_sum_fill,
)
from benchmarks.bench_compile import text_only

RECORDS = [
    {"id": "vqa-1", "image": "coco/1.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat color is the bus?\nAnswer the question using a single word or phrase."},
        {"from": "gpt", "value": "Red"},
        {"from": "human", "value": "How many wheels?\nAnswer the question using a single word or phrase."},
        {"from": "gpt", "value": "4"}]},
    {"id": "chat-2", "conversations": [
        {"from": "human", "value": "Write a haiku about packing."},
        {"from": "gpt", "value": "Tokens in a row,\nno padding left in the bin,\nthe GPU hums."}]},
    {"id": "late-image-3", "image": "vg/3.jpg", "conversations": [
        {"from": "human", "value": "Describe the region [0.1, 0.2, 0.3, 0.4].\n<image>"},
        {"from": "gpt", "value": "A small red square."}]},
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    from litdata.demo import DEMO_TOKENIZER_DIR
    from litdata.tokenize.tokens import load_tokenizer

    return load_tokenizer(DEMO_TOKENIZER_DIR)[0]


@pytest.fixture(scope="module")
def llama_call(tokenizer):
    """The demo tokenizer adds no BOS; LLaVA's LLaMA tokenizers do, and its masking arithmetic counts on it."""
    return WithBos(tokenizer)


def supervised_text(tok, ex) -> str:
    return tok.decode([int(i) for i, l in zip(ex.input_ids, ex.labels) if l != IGNORE_INDEX])


def test_llava_loop_supervises_exactly_the_answers_and_their_eos(tokenizer, llama_call):
    pre = LlavaPreprocessor(llama_call)
    vqa, chat, _ = (pre(r) for r in RECORDS)
    assert not vqa.mismatch and not chat.mismatch
    assert supervised_text(tokenizer, vqa).split() == ["Red</s>", "4</s>"]
    assert supervised_text(tokenizer, chat).strip() == RECORDS[1]["conversations"][1]["value"] + "</s>"
    assert vqa.input_ids[0] == tokenizer.bos_token_id and (vqa.input_ids == IMAGE_TOKEN_INDEX).sum() == 1


def test_llava_loop_and_datasets_map_give_identical_ids_and_labels(tokenizer, llama_call):
    import datasets

    datasets.disable_progress_bars()
    records = RECORDS + text_only(RECORDS)
    loop = [LlavaPreprocessor(llama_call)(r) for r in records]
    mapped = map_dataset(records_dataset(records), tokenizer, batch_size=2)
    assert len(mapped) == len(records)
    for ex, ids, labels in zip(loop, mapped["input_ids"], mapped["labels"]):
        assert np.array_equal(ex.input_ids, np.asarray(ids))
        assert np.array_equal(ex.labels, np.asarray(labels))


def test_llava_loop_tokenizes_the_same_text_as_litdata(tokenizer, llama_call):
    """Same tokens per record, so tokens/s of the baselines and of litdata count the same thing."""
    from litdata.records import Conversation, Provenance, Role, Turn
    from litdata.render import get_template

    rec = RECORDS[1]
    conv = Conversation(provenance=Provenance(source="t", index=0, id=rec["id"]),
                        turns=tuple(Turn(role=Role.USER if t["from"] == "human" else Role.ASSISTANT, text=t["value"])
                                    for t in rec["conversations"]))  # fmt: skip
    from litdata.tokenize.batch import encode_rendered

    rendered = get_template("vicuna_v1").render(conv, [[], []])
    ours = encode_rendered(tokenizer, [rendered], image_id=tokenizer.convert_tokens_to_ids("<image>"))[0][0]
    assert LlavaPreprocessor(llama_call)(rec).input_ids.tolist() == ours.tolist()


def test_a_length_mismatch_masks_the_whole_example_as_llava_does():
    conv = "SYS USER: q ASSISTANT: a</s>"
    ids = np.arange(10, dtype=np.int64)
    ex = mask_targets(conv, ids, lambda text: 3, model_max_length=2048)  # rounds say 1 + 3 tokens, ids hold 10
    assert ex.mismatch and (ex.labels == IGNORE_INDEX).all()


def test_text_only_drops_images_and_placeholders():
    out = text_only(RECORDS)
    assert all("image" not in r for r in out)
    assert all("<image>" not in t["value"] for r in out for t in r["conversations"])
    assert out[0]["conversations"][0]["value"].startswith("What color is the bus?")
    assert out[2]["conversations"][0]["value"] == "Describe the region [0.1, 0.2, 0.3, 0.4]."


def test_greedy_knapsack_matches_a_hand_packed_example():
    # ascending [1, 2, 3, 5, 8]; first knapsack takes 8 then 2 (10 left after 8 is 2), then 3+5+1.
    bins = greedy_knapsack([5, 1, 8, 3, 2], 10)
    assert [sorted([5, 1, 8, 3, 2][i] for i in b) for b in bins] == [[2, 8], [1, 3, 5]]


def test_first_fit_decreasing_opens_a_bin_only_when_nothing_fits():
    lengths = [6, 5, 4, 3, 2]
    bins = first_fit_decreasing(lengths, 10)
    assert [[lengths[i] for i in b] for b in bins] == [[6, 4], [5, 3, 2]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=100), max_size=300), st.integers(min_value=100, max_value=400),
       st.integers(min_value=1, max_value=50))  # fmt: skip
def test_packers_never_overfill_and_place_every_item_once(lengths, capacity, buffer):
    for bins in (greedy_knapsack(lengths, capacity), greedy_knapsack_buffered(lengths, capacity, buffer),
                 first_fit_decreasing(lengths, capacity), no_packing(lengths, capacity),
                 subset_sum_fill(lengths, capacity)):  # fmt: skip
        check_bins(lengths, bins, capacity)
    if lengths:
        assert len(first_fit_decreasing(lengths, capacity)) >= -(-sum(lengths) // capacity)


def test_check_bins_catches_an_overfull_or_lost_item():
    with pytest.raises(AssertionError, match="over capacity"):
        check_bins([6, 6], [[0, 1]], 10)
    with pytest.raises(AssertionError, match="lost"):
        check_bins([6, 6], [[0]], 10)


def test_efficiency_of_padding_every_record():
    lengths = [512, 1024, 2048]
    assert efficiency(lengths, no_packing(lengths, 2048), 2048) == pytest.approx(3584 / (3 * 2048))
    with pytest.raises(ValueError, match="larger"):
        greedy_knapsack([4097], 4096)


def test_subset_sum_fill_finds_the_exact_fills_that_first_fit_decreasing_misses():
    lengths = [6, 5, 4, 4, 3, 3, 3, 2]  # sums to 30: three sequences of exactly 10 exist
    assert [sorted(lengths[i] for i in b) for b in subset_sum_fill(lengths, 10)] == [[4, 6], [2, 3, 5], [3, 3, 4]]
    assert len(first_fit_decreasing(lengths, 10)) == 4  # 6+4 | 5+4 | 3+3+3 | 2
