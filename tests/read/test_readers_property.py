"""Whatever the records contain, every reader yields exactly one item per record and never raises."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litdata.read import ReadLimits, SourceError, read_sources
from litdata.records import Conversation, Reject

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LIMITS = ReadLimits(max_turns=6, max_turn_chars=40, max_images=2)

# Any character, lone surrogates included (json.dumps writes them as \\ud800 escapes).
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.sampled_from(
    ["", " ", "<image>", "Q?\n<image>", "<image><image>", "a\x00b", "human", "gpt"]
)
scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)

role = st.sampled_from(["human", "gpt", "system", "user", "assistant", "model", "robot", ""]) | json_value
turn = st.fixed_dictionaries({"from": role, "value": text | json_value})
message_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "image_url", "video"]) | json_value},
    optional={"text": text, "image": text | json_value, "image_url": text | st.fixed_dictionaries({"url": text})},
)
message = st.fixed_dictionaries({"role": role, "content": text | st.lists(message_part, max_size=3) | json_value})
image_field = st.none() | text | st.lists(text | json_value, max_size=3) | json_value
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "id": json_value,
        "image": image_field,
        "images": image_field,
        "conversations": st.lists(turn, max_size=7) | json_value,
        "messages": st.lists(message, max_size=7),
    },
)
record = near_valid | json_value


def check(path, expected: int) -> None:
    items = list(read_sources([path], LIMITS))
    assert len(items) == expected
    assert all(isinstance(x, (Conversation, Reject)) for x in items)
    assert [x.provenance.source for x in items] == [str(path)] * expected


@SETTINGS
@given(records=st.lists(record, max_size=8))
def test_random_records_as_json_array_and_jsonl(tmp_path, records):
    array = tmp_path / "r.json"
    array.write_text(json.dumps(records))
    check(array, len(records))
    lines = tmp_path / "r.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    check(lines, len(records))
    indices = [x.provenance.index for x in read_sources([array], LIMITS)]
    assert indices == list(range(len(records)))


def _is_record_line(b: bytes) -> bool:
    # A leading byte order mark is dropped from the first line, so a BOM-only first line would be blank.
    return b"\n" not in b and bool(b.strip(b" \t\r")) and not b.startswith(b"\xef\xbb\xbf")


@SETTINGS
@given(
    lines=st.lists(st.binary(max_size=40).filter(_is_record_line), max_size=8),
    blank=st.sampled_from([b"", b"   ", b"\t\r"]),
)
def test_random_bytes_lines_in_jsonl(tmp_path, lines, blank):
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\n".join(lines + [blank]) + b"\n" + blank)
    check(path, len(lines))


@SETTINGS
@given(records=st.lists(near_valid, min_size=1, max_size=6), cut=st.floats(0, 1), junk=st.binary(max_size=12))
def test_corrupted_json_array_never_raises(tmp_path, records, cut, junk):
    """Bytes spliced anywhere into an array: the reader resynchronises or stops with a reject; it never raises
    or loops, and indices stay consecutive."""
    data = json.dumps(records).encode()
    at = int(cut * len(data))
    path = tmp_path / "c.json"
    path.write_bytes(data[:at] + junk + data[at:])
    try:
        items = list(read_sources([path], LIMITS))
    except SourceError as e:  # only a file that no longer starts with '[' or '{' may be refused as a whole
        assert at == 0, e
        return
    assert all(isinstance(x, (Conversation, Reject)) for x in items)
    assert [x.provenance.index for x in items] == list(range(len(items)))
