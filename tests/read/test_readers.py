"""The readers as a user meets them: files in, one Conversation or Reject per record out."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from litdata.read import ReadLimits, SourceError, read_sources
from litdata.read.jsonarray.reader import iter_json_array
from litdata.records import Conversation, ImageRef, Reject, RejectReason, Role

Q = "What are the colors of the bus in the image?"


def llava(i, question=f"<image>\n{Q}", answer="White and red.", image="coco/train2017/000000033471.jpg"):
    rec = {"id": f"r{i}", "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if image is not None:
        rec["image"] = image
    return rec


def write_json(path: Path, records) -> Path:
    path.write_text(json.dumps(records, indent=1))
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read(*paths, limits=None):
    return list(read_sources(list(paths), limits or ReadLimits()))


def only(items):
    assert len(items) == 1, items
    return items[0]


def png_bytes(size=(4, 3), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------- formats


def test_llava_json_array_gives_conversations_with_provenance(tmp_path):
    src = write_json(tmp_path / "llava.json", [llava(0), llava(1, image=None, question="Tell me a joke.")])
    first, second = read(src)
    assert first.provenance.source == str(src) and first.provenance.index == 0 and first.provenance.id == "r0"
    assert [t.role for t in first.turns] == [Role.USER, Role.ASSISTANT]
    assert first.turns[0].text == f"<image>\n{Q}"
    assert first.images == (ImageRef(path="coco/train2017/000000033471.jpg"),)
    assert second.images == () and second.turns[0].text == "Tell me a joke."


def test_source_is_named_as_given(tmp_path, monkeypatch):
    write_json(tmp_path / "d.json", [llava(0)])
    monkeypatch.chdir(tmp_path)
    assert only(read("d.json")).provenance.source == "d.json"


def test_json_file_that_holds_json_lines_is_read_as_lines(tmp_path):
    src = write_jsonl(tmp_path / "actually_lines.json", [llava(0), llava(1)])
    assert [c.provenance.id for c in read(src)] == ["r0", "r1"]


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_jsonl_skips_blank_lines_and_indexes_by_line(tmp_path, suffix):
    src = tmp_path / f"d{suffix}"
    src.write_text(json.dumps(llava(0)) + "\n\n   \n" + json.dumps(llava(1)) + "\r\n")
    items = read(src)
    assert [(c.provenance.index, c.provenance.id) for c in items] == [(0, "r0"), (3, "r1")]


def test_jsonl_bad_lines_are_rejected_and_reading_goes_on(tmp_path):
    src = tmp_path / "d.jsonl"
    good = json.dumps(llava(0)).encode()
    src.write_bytes(good + b"\n" + b'{"id": "x", "conversations": [\xff\xfe]}\n' + b'{"id": 1,}\n' + good + b"\n")
    items = read(src)
    assert [type(x).__name__ for x in items] == ["Conversation", "Reject", "Reject", "Conversation"]
    assert items[1].reason is RejectReason.INVALID_UTF8 and "line 2" in items[1].message
    assert items[2].reason is RejectReason.INVALID_JSON and "line 3" in items[2].message
    assert items[2].provenance.index == 2


def test_jsonl_line_over_the_record_size_limit_is_rejected_without_reading_it_whole(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps(llava(0, answer="x" * 5000)) + "\n" + json.dumps(llava(1)) + "\n")
    big, small = read(src, limits=ReadLimits(max_record_bytes=1000))
    assert big.reason is RejectReason.RECORD_TOO_LARGE and "line 1" in big.message
    assert isinstance(small, Conversation) and small.provenance.index == 1


def test_big_json_array_is_streamed(tmp_path):
    records = [llava(i, answer=f"Answer number {i} ü€😀.") for i in range(20_000)]
    src = write_json(tmp_path / "big.json", records)
    assert src.stat().st_size > 3_000_000
    items = read(src)
    assert len(items) == 20_000 and all(isinstance(c, Conversation) for c in items)
    assert items[-1].turns[1].text == "Answer number 19999 ü€😀."

    tracemalloc.start()
    try:
        with open(src, "rb") as f:
            n = sum(1 for _ in iter_json_array(f, max_record_bytes=1 << 20, chunk_bytes=64 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 20_000
    assert peak < 1_000_000, f"peak {peak} bytes for a {src.stat().st_size}-byte file: not streaming"


def test_tiny_chunks_split_anywhere_give_the_same_records(tmp_path):
    records = [{"n": 123456789, "s": 'é😀\\"', "x": [1.5, True, None]}, 42, "tail", {"deep": [[[]]]}]
    src = tmp_path / "a.json"
    src.write_text(json.dumps(records, ensure_ascii=False))
    for chunk in (1, 2, 3, 7):
        with open(src, "rb") as f:
            assert [v for _, v in iter_json_array(f, max_record_bytes=1000, chunk_bytes=chunk)] == records


def test_one_huge_element_in_small_chunks_is_read(tmp_path):
    src = write_json(tmp_path / "a.json", [llava(0, answer="long " * 50_000), llava(1)])
    with open(src, "rb") as f:
        values = [v for _, v in iter_json_array(f, max_record_bytes=1 << 20, chunk_bytes=1024)]
    assert [v["id"] for v in values] == ["r0", "r1"]


def test_malformed_array_element_is_rejected_and_reading_resumes(tmp_path):
    src = tmp_path / "a.json"
    src.write_text('[{"id": "a", "conversations": [}, \n {"id": "b", "x": [1, 2,, 3]},\n' + json.dumps(llava(2)) + "]")
    a, b, c = read(src)
    assert a.reason is RejectReason.INVALID_JSON and "element 0 at byte 1" in a.message
    assert b.reason is RejectReason.INVALID_JSON and b.provenance.index == 1
    assert isinstance(c, Conversation) and c.provenance.index == 2


def test_missing_comma_rejects_the_unseparated_element_only(tmp_path):
    src = tmp_path / "a.json"
    src.write_text("[" + json.dumps(llava(0)) + " " + json.dumps(llava(1)) + ", " + json.dumps(llava(2)) + "]")
    first, bad, last = read(src)
    assert bad.reason is RejectReason.INVALID_JSON and "expected ',' or ']'" in bad.message
    assert (first.provenance.id, last.provenance.id, last.provenance.index) == ("r0", "r2", 2)


def test_truncated_array_stops_with_one_reject_naming_index_and_byte(tmp_path):
    src = tmp_path / "a.json"
    text = json.dumps([llava(0), llava(1), llava(2)])
    src.write_text(text[: len(text) * 2 // 3])
    items = read(src)
    assert isinstance(items[0], Conversation)
    stop = items[-1]
    assert stop.reason is RejectReason.INVALID_JSON
    assert f"reading stopped at element {len(items) - 1}, byte " in stop.message
    assert "counted as this one reject" in stop.message


def test_unclosed_array_after_a_complete_element_is_reported(tmp_path):
    src = tmp_path / "a.json"
    src.write_text("[" + json.dumps(llava(0)) + ",\n")
    good, stop = read(src)
    assert isinstance(good, Conversation) and "ends where an element was expected" in stop.message


def test_data_after_the_array_is_reported(tmp_path):
    src = tmp_path / "a.json"
    src.write_text(json.dumps([llava(0)]) + "\n[1, 2]\n")
    good, extra = read(src)
    assert isinstance(good, Conversation) and "after the closing ']'" in extra.message


def test_array_element_with_bytes_that_are_not_utf8(tmp_path):
    src = tmp_path / "a.json"
    body = json.dumps(llava(1)).encode().replace(b"White", b"Wh\xffte")
    src.write_bytes(b"[" + json.dumps(llava(0)).encode() + b"," + body + b"," + json.dumps(llava(2)).encode() + b"]")
    a, b, c = read(src)
    assert b.reason is RejectReason.INVALID_UTF8 and "element 1" in b.message
    assert (a.provenance.id, c.provenance.id) == ("r0", "r2")


def test_empty_array_and_trailing_comma(tmp_path):
    assert read(write_json(tmp_path / "empty.json", [])) == []
    src = tmp_path / "trailing.json"
    src.write_text("[" + json.dumps(llava(0)) + ",]")
    assert isinstance(only(read(src)), Conversation)


@pytest.mark.parametrize(
    "name, content, why",
    [
        ("missing.json", None, "no such file"),
        ("data.csv", "a,b\n", "unknown format"),
        ("empty.json", "  \n", "empty"),
        ("scalar.json", '"just a string"', "expected a JSON array"),
        ("bad.parquet", "not parquet", "Parquet"),
    ],
)
def test_unreadable_sources_raise_source_error_naming_the_file(tmp_path, name, content, why):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=why) as err:
        list(read_sources([path]))
    assert str(path) in str(err.value)


def test_a_bad_second_source_fails_before_any_record_is_read(tmp_path):
    with pytest.raises(SourceError, match="nope.jsonl"):
        read_sources([write_json(tmp_path / "ok.json", [llava(0)]), tmp_path / "nope.jsonl"])


def test_sources_are_read_in_order_with_per_file_indices(tmp_path):
    a = write_json(tmp_path / "a.json", [llava(0), llava(1)])
    b = write_jsonl(tmp_path / "b.jsonl", [llava(2)])
    assert [(c.provenance.source, c.provenance.index) for c in read(a, b)] == [(str(a), 0), (str(a), 1), (str(b), 0)]


# ---------------------------------------------------------------- parquet


def write_parquet(path: Path, rows: list[dict], **kwargs) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, **kwargs)
    return path


def test_parquet_with_string_list_and_embedded_images(tmp_path):
    png = png_bytes()
    one = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A square."}]
    two = [{"from": "human", "value": "<image> vs <image>: which is red?"}, {"from": "gpt", "value": "Both."}]
    # Each file has one column type for `image`, as a real Parquet file does.
    (s,) = read(write_parquet(tmp_path / "s.parquet", [{"id": 7, "image": "a.png", "conversations": one}]))
    (l,) = read(write_parquet(tmp_path / "l.parquet", [{"id": "l", "image": ["a.png", "b.png"], "conversations": two}]))
    e, f = read(
        write_parquet(
            tmp_path / "e.parquet",
            [
                {"id": "e", "image": {"bytes": png, "path": "sq.png"}, "conversations": one},
                {"id": "f", "image": {"bytes": None, "path": "on/disk.png"}, "conversations": one},  # HF: not embedded
            ],
        )
    )
    (el,) = read(
        write_parquet(
            tmp_path / "el.parquet",
            [
                {"image": [{"bytes": png, "path": "x.png"}, {"bytes": png, "path": None}], "conversations": two},
            ],
        )
    )
    assert s.provenance.id == "7" and s.images == (ImageRef(path="a.png"),)
    assert l.images == (ImageRef(path="a.png"), ImageRef(path="b.png"))
    assert l.turns[0].text == "<image> vs <image>: which is red?"  # multi-image tags stay where written
    assert e.images == (ImageRef(path="sq.png", data=png),)
    assert f.images == (ImageRef(path="on/disk.png"),)
    assert el.images == (ImageRef(path="x.png", data=png), ImageRef(path=None, data=png))


def test_parquet_reads_in_batches_and_mixes_shapes(tmp_path):
    rows = []
    for i in range(2500):
        if i % 2:
            rows.append(
                {
                    "id": i,
                    "conversations": None,
                    "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
                }
            )
        else:
            rows.append(
                {
                    "id": i,
                    "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}],
                    "messages": None,
                }
            )
    items = read(write_parquet(tmp_path / "mixed.parquet", rows, row_group_size=1000))
    assert len(items) == 2500 and all(isinstance(c, Conversation) for c in items)
    assert [c.provenance.index for c in items] == list(range(2500))
    assert items[1999].turns[0].text == "q1999"


def test_corrupt_parquet_row_group_rejects_each_of_its_rows_and_reading_goes_on(tmp_path):
    rows = [
        {"id": i, "conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": "a"}]}
        for i in range(300)
    ]
    path = write_parquet(tmp_path / "c.parquet", rows, row_group_size=100, compression="none")
    page = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[page : page + 64] = b"\xff" * 64  # destroy the first page header of row group 1
    path.write_bytes(bytes(data))
    items = read(path)
    assert len(items) == 300
    assert all(isinstance(c, Conversation) for c in items[:100] + items[200:])
    assert {r.reason for r in items[100:200]} == {RejectReason.READ_ERROR}
    assert "row group 1" in items[150].message and items[150].provenance.index == 150


def test_parquet_without_a_turns_column_rejects_every_row(tmp_path):
    items = read(write_parquet(tmp_path / "t.parquet", [{"id": "a", "text": "hello"}, {"id": "b", "text": "x"}]))
    assert [r.reason for r in items] == [RejectReason.MISSING_CONVERSATIONS] * 2
    assert "'text'" in items[0].message


# ---------------------------------------------------------------- record shapes


def test_sharegpt_with_system_turn_and_assistant_aliases(tmp_path):
    rec = {
        "id": "sg",
        "conversations": [
            {"from": "system", "value": "You are terse."},
            {"from": "human", "value": "Hi"},
            {"from": "chatgpt", "value": "Hello. "},
            {"from": "user", "value": "Again"},
            {"from": "bard", "value": "Hello again."},
        ],
    }
    conv = only(read(write_json(tmp_path / "s.json", [rec])))
    assert [t.role for t in conv.turns] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    assert conv.turns[2].text == "Hello. "  # text is kept exactly


def test_openai_messages_with_string_and_parts_content(tmp_path):
    rec = {
        "id": "oa",
        "messages": [
            {"role": "system", "content": "Be helpful."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image", "image": "a.jpg"},
                    {"type": "image_url", "image_url": {"url": "file://dir/b%20c.png"}},
                ],
            },
            {"role": "assistant", "content": "The first is darker."},
        ],
    }
    conv = only(read(write_json(tmp_path / "o.json", [rec])))
    assert [t.role for t in conv.turns] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert conv.turns[1].text == "Compare\n<image>\n<image>"
    assert conv.images == (ImageRef(path="a.jpg"), ImageRef(path="dir/b c.png"))


def test_openai_single_image_part_is_moved_to_the_front_like_llava(tmp_path):
    rec = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Describe it."}, {"type": "image_url", "image_url": "pics/1.jpg"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        ]
    }
    conv = only(read(write_json(tmp_path / "o.json", [rec])))
    assert conv.turns[0].text == "<image>\nDescribe it." and conv.turns[1].text == "A cat."


def test_openai_image_placeholders_take_the_record_images(tmp_path):
    rec = {
        "images": ["x.png", "y.png"],
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same?"}]},
            {"role": "assistant", "content": "No."},
        ],
    }
    conv = only(read(write_jsonl(tmp_path / "o.jsonl", [rec])))
    assert conv.images == (ImageRef(path="x.png"), ImageRef(path="y.png"))
    assert conv.turns[0].text == "<image>\n<image>\nSame?"


def test_openai_data_url_becomes_embedded_bytes(tmp_path):
    import base64

    png = png_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    rec = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]},
            {"role": "assistant", "content": "Red."},
        ]
    }
    conv = only(read(write_json(tmp_path / "o.json", [rec])))
    assert conv.images == (ImageRef(data=png),) and conv.turns[0].text == "<image>\n"


def test_single_image_tag_is_moved_to_the_front_and_the_text_stripped(tmp_path):
    conv = only(read(write_json(tmp_path / "a.json", [llava(0, question="  What is this?\n<image>  ")])))
    assert conv.turns[0].text == "<image>\nWhat is this?"


def test_single_image_tag_in_a_later_turn_is_moved_within_that_turn(tmp_path):
    rec = {
        "image": "a.jpg",
        "conversations": [
            {"from": "human", "value": "Hello "},
            {"from": "gpt", "value": "Hi."},
            {"from": "human", "value": "Now look: <image>"},
            {"from": "gpt", "value": "A dog."},
        ],
    }
    conv = only(read(write_json(tmp_path / "a.json", [rec])))
    assert [t.text for t in conv.turns] == ["Hello ", "Hi.", "<image>\nNow look:", "A dog."]


def test_image_list_and_images_alias(tmp_path):
    recs = [
        llava(0, question="<image> and <image>?", image=["a.jpg", "b.jpg"]),
        {"images": ["c.jpg"], "conversations": llava(1)["conversations"]},
    ]
    two, one = read(write_json(tmp_path / "a.json", recs))
    assert (
        two.images == (ImageRef(path="a.jpg"), ImageRef(path="b.jpg")) and two.turns[0].text == "<image> and <image>?"
    )
    assert one.images == (ImageRef(path="c.jpg"),)


# ---------------------------------------------------------------- rejects

TURNS = [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]

REJECTS = [
    ([1, 2], RejectReason.NOT_AN_OBJECT, "record is an array"),
    ({"id": "x"}, RejectReason.MISSING_CONVERSATIONS, "neither 'conversations' nor 'messages' (keys: 'id')"),
    ({"conversations": []}, RejectReason.EMPTY_CONVERSATIONS, "'conversations' is an empty list"),
    ({"conversations": "hi"}, RejectReason.BAD_FIELD_TYPE, "'conversations' must be a list of turns, got a string"),
    ({"conversations": [TURNS[0], "A."]}, RejectReason.BAD_FIELD_TYPE, "conversations[1] must be an object"),
    (
        {"conversations": [{"value": "Q?"}, TURNS[1]]},
        RejectReason.BAD_FIELD_TYPE,
        "conversations[0].from must be a string but is missing",
    ),
    (
        {"conversations": [TURNS[0], {"from": "gpt", "value": 3}]},
        RejectReason.BAD_FIELD_TYPE,
        "conversations[1].value must be a string but is a number",
    ),
    ({"conversations": TURNS, "image": 5}, RejectReason.BAD_FIELD_TYPE, "image must be a path string"),
    ({"conversations": TURNS, "image": ["a.jpg", None]}, RejectReason.BAD_FIELD_TYPE, "image[1] must be a path string"),
    ({"conversations": TURNS, "image": ""}, RejectReason.BAD_FIELD_TYPE, "image is an empty image path"),
    (
        {"conversations": TURNS, "image": "a.jpg", "images": ["b.jpg"]},
        RejectReason.BAD_FIELD_TYPE,
        "both 'image' and 'images'",
    ),
    (
        {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "A"}]},
        RejectReason.BAD_FIELD_TYPE,
        "messages[0].content must be a string or a list of parts but is a number",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "audio"}]}, {"role": "assistant", "content": "A"}]},
        RejectReason.BAD_FIELD_TYPE,
        "messages[0].content[0] has unsupported content part type 'audio'",
    ),
    (
        {"conversations": [{"from": "narrator", "value": "Once"}, TURNS[1]]},
        RejectReason.UNKNOWN_ROLE,
        "conversations[0] has unknown role 'narrator'",
    ),
    (
        {"messages": [{"role": "tool", "content": "x"}]},
        RejectReason.UNKNOWN_ROLE,
        "messages[0] has unknown role 'tool'",
    ),
    (
        {"conversations": [TURNS[0], {"from": "gpt", "value": " \n\t"}]},
        RejectReason.EMPTY_TURN,
        "conversations[1].value (assistant turn) is empty",
    ),
    (
        {"conversations": [TURNS[1], TURNS[0]]},
        RejectReason.ROLES_OUT_OF_ORDER,
        "conversations[0] is an assistant turn (from 'gpt') where a user turn was expected (the conversation must start",
    ),
    (
        {"conversations": [TURNS[0], TURNS[0], TURNS[1]]},
        RejectReason.ROLES_OUT_OF_ORDER,
        "conversations[1] is a user turn (from 'human') where an assistant turn was expected (turns must alternate)",
    ),
    (
        {"conversations": [TURNS[0], TURNS[1], TURNS[0]]},
        RejectReason.ROLES_OUT_OF_ORDER,
        "conversations[2] is a user turn with no assistant answer",
    ),
    (
        {"conversations": [TURNS[0], {"from": "system", "value": "S"}, TURNS[1]]},
        RejectReason.ROLES_OUT_OF_ORDER,
        "conversations[1] is a system turn (from 'system'); a system turn is only allowed first",
    ),
    (
        {"conversations": [{"from": "system", "value": "S"}]},
        RejectReason.ROLES_OUT_OF_ORDER,
        "a system turn and nothing else",
    ),
    (
        {"conversations": [{"from": "human", "value": "<image>\nQ?"}, TURNS[1]]},
        RejectReason.IMAGE_COUNT_MISMATCH,
        "the text has 1 <image> tags (conversations[0]: 1) but the record names 0 images",
    ),
    (
        {"image": ["a.jpg", "b.jpg"], "conversations": [{"from": "human", "value": "<image>\nQ?"}, TURNS[1]]},
        RejectReason.IMAGE_COUNT_MISMATCH,
        "has 1 <image> tags (conversations[0]: 1) but the record names 2 images",
    ),
    (
        {"image": "a.jpg", "conversations": TURNS},
        RejectReason.IMAGE_COUNT_MISMATCH,
        "has 0 <image> tags (none) but the record names 1 images",
    ),
    (
        {"conversations": [{"from": "human", "value": "a\u0000b"}, TURNS[1]]},
        RejectReason.INVALID_TEXT,
        "conversations[0].value contains a NUL byte (U+0000) at character 1",
    ),
    (
        {"conversations": [TURNS[0], {"from": "gpt", "value": "x\ud800"}]},
        RejectReason.INVALID_TEXT,
        "conversations[1].value contains a lone surrogate (U+D800) at character 1",
    ),
    (
        {"conversations": [TURNS[0], {"from": "gpt", "value": "bell\u0007"}]},
        RejectReason.INVALID_TEXT,
        "contains a control character (U+0007) at character 4",
    ),
    (
        {
            "messages": [
                {"role": "system", "content": "ok\x1b[0m"},
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ]
        },
        RejectReason.INVALID_TEXT,
        "messages[0].content contains a control character (U+001B)",
    ),
    ({"conversations": TURNS * 3}, RejectReason.TOO_MANY_TURNS, "'conversations' has 6 turns, more than max_turns=4"),
    (
        {"conversations": [TURNS[0], {"from": "gpt", "value": "y" * 101}]},
        RejectReason.TURN_TOO_LONG,
        "conversations[1].value has 101 characters, more than max_turn_chars=100",
    ),
    (
        {"image": ["a", "b", "c"], "conversations": [{"from": "human", "value": "<image><image><image>"}, TURNS[1]]},
        RejectReason.TOO_MANY_IMAGES,
        "3 images, more than max_images=2",
    ),
    (
        {"image": "https://example.com/a.jpg", "conversations": [{"from": "human", "value": "<image>"}, TURNS[1]]},
        RejectReason.IMAGE_UNSAFE_PATH,
        "remote images are not fetched",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]},
                {"role": "assistant", "content": "a"},
            ]
        },
        RejectReason.IMAGE_UNSAFE_PATH,
        "messages[0].content[0].image_url is a remote URL",
    ),
    (
        {"image": "data:image/png;base64,@@@", "conversations": [{"from": "human", "value": "<image>"}, TURNS[1]]},
        RejectReason.IMAGE_UNDECODABLE,
        "invalid base64",
    ),
]


@pytest.mark.parametrize(
    "record, reason, message", REJECTS, ids=[f"{r.value}-{i}" for i, (_, r, _) in enumerate(REJECTS)]
)
def test_every_reject_reason_names_what_is_wrong(tmp_path, record, reason, message):
    limits = ReadLimits(max_turns=4, max_turn_chars=100, max_images=2)
    for src in (
        write_json(tmp_path / "r.json", [{"id": "keep-me"}, record]),
        write_jsonl(tmp_path / "r.jsonl", [{"id": "keep-me"}, record]),
    ):
        first, item = read(src, limits=limits)
        assert first.reason is RejectReason.MISSING_CONVERSATIONS and first.provenance.id == "keep-me"
        assert isinstance(item, Reject), item
        assert item.reason is reason, item.message
        assert message in item.message
        assert item.provenance.index == 1


def test_reject_keeps_the_record_id(tmp_path):
    items = read(
        write_json(
            tmp_path / "a.json",
            [{"id": 12, "conversations": []}, {"id": 1.5, "conversations": []}, {"id": True, "conversations": []}],
        )
    )
    assert [r.provenance.id for r in items] == ["12", None, None]
    assert items[0].to_json() == {
        "file": str(tmp_path / "a.json"),
        "index": 0,
        "id": "12",
        "reason": "empty_conversations",
        "message": "'conversations' is an empty list",
    }
