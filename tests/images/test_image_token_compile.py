"""Per-image token counts through the compiler: stored per sample (KEY.image_tokens.npy, KEY.image_tiles.npy),
used by packing and truncation, recorded in the manifest, checked by verify, shown by inspect; shards written
before (format 1, no such members) stay readable with the manifest's fixed count."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest

from litdata.config import PackSettings
from litdata.images.tokens import parse_rule
from litdata.pack.packer import make_packer
from litdata.records import Document, Provenance
from tests.helpers.compile import compile_cli, read_samples

RULE = "tiles:tile=448,max=6,min=1,thumbnail=1,per_tile=16"  # 16 to 112 positions per image
SIZES = [(30, 30), (448, 448), (900, 300), (300, 900), (2000, 100), (100, 2000), (1000, 1000), (1344, 448)]
SEQ = 256


@pytest.fixture(scope="module")
def mixed_source(tmp_path_factory) -> Path:
    """LLaVA records over images of many shapes; some with four images, so that truncation must drop some."""
    from PIL import Image

    root = tmp_path_factory.mktemp("mixed")
    (root / "img").mkdir()
    for i, (w, h) in enumerate(SIZES):
        Image.new("RGB", (w, h), (i * 30 % 255, 80, 160)).save(root / "img" / f"{i}.png")
    rng = random.Random(3)
    records = []
    for r in range(60):
        n = 4 if r % 5 == 0 else 1
        imgs = [f"{rng.randrange(len(SIZES))}.png" for _ in range(n)]
        tags = " ".join("<image>" for _ in imgs)
        words = " ".join(rng.choice(["red", "blue", "circle", "square", "left", "right"]) for _ in range(rng.randrange(3, 40)))
        records.append({"id": f"r{r}", "image": imgs if n > 1 else imgs[0],
                        "conversations": [{"from": "human", "value": f"{tags}\nDescribe {words}"},
                                          {"from": "gpt", "value": f"It is {words}."}]})
    (root / "data.json").write_text(json.dumps(records))
    return root


def _compile(src: Path, out: Path, *extra) -> int:
    return compile_cli("compile", src / "data.json", "--image-root", src / "img", "--out", out, "--no-progress",
                       "--seq-len", SEQ, "--no-mine-templates", *extra)


@pytest.fixture(scope="module")
def tiled_out(mixed_source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiled") / "out"
    assert _compile(mixed_source, out, "--image-tokens", RULE, "--overflow", "truncate") == 0
    return out


def _image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(data)).size


def test_each_image_carries_the_rules_count_and_tiles(tiled_out):
    from litdata.verify.folder import verify

    manifest = json.loads((tiled_out / "manifest.json").read_text())
    assert manifest["format"]["version"] == 2
    assert manifest["config"]["image_token_rule"] == RULE and manifest["config"]["image_tokens"] is None
    rule, seen, truncated = parse_rule(RULE), set(), 0
    for sample in read_samples(tiled_out / "shard-000000.tar"):
        images = sorted(k for k in sample if k.startswith("img"))
        counts, tiles = sample["image_tokens.npy"], sample["image_tiles.npy"]
        assert counts.dtype == np.int32 and len(counts) == len(images) == len(tiles)
        for name, c, t in zip(images, counts, tiles):
            assert (c, t) == rule.count(*_image_size(sample[name]))
            seen.add(int(c))
        assert len(sample["tokens.npy"]) - len(images) + int(counts.sum()) <= SEQ
        truncated += sum("truncated_from" in d for d in json.loads(sample["json"])["documents"])
    assert len(seen) >= 4 and truncated > 0  # mixed counts, and truncation happened
    assert verify(tiled_out).ok


def test_verify_names_a_count_that_disagrees_with_the_rule(tiled_out, tmp_path):
    from litdata.verify.folder import verify

    out = _copy_with(tiled_out, tmp_path / "bad", edit=lambda name, a: a + 1 if name.endswith("image_tokens.npy") else a)
    rep = verify(out)
    assert not rep.ok and any("image_tokens.npy: image 0 (" in p and "rule tiles:" in p for p in rep.problems)


def test_verify_refuses_a_missing_count_member_in_format_2(tiled_out, tmp_path):
    from litdata.verify.folder import verify

    out = _copy_with(tiled_out, tmp_path / "gone", drop=lambda name: name.endswith(".image_tokens.npy"))
    assert any("image_tokens.npy: missing" in p for p in verify(out).problems)


def test_inspect_shows_each_images_count_and_tiles(tiled_out, capsys):
    assert compile_cli("inspect", tiled_out, "--no-color", "--sequences", "3") == 0
    text = capsys.readouterr().out
    assert f"image tokens: {RULE}" in text
    assert "[image 1: 16 tokens, 1 tiles]" in text or "tiles]" in text
    shown = {int(n) for n in __import__("re").findall(r"\[image \d+: (\d+) tokens, \d+ tiles\]", text)}
    assert shown and shown <= {16 * t for t in range(1, 8)}


def test_format_1_shards_read_with_the_manifests_fixed_count(mixed_source, tmp_path, capsys):
    """A compile from before per-image counts: no KEY.image_tokens.npy, format 1, no image_token_rule."""
    from litdata.inspect.reader import CompiledFolder
    from litdata.verify.folder import verify

    out = tmp_path / "v2"
    assert _compile(mixed_source, out, "--image-tokens", "24") == 0
    old = _copy_with(out, tmp_path / "v1", drop=lambda name: name.endswith(".image_tokens.npy"), version1=True)
    assert verify(old).ok, verify(old).problems
    seqs = list(CompiledFolder.open(old).sequences())
    assert all(s.image_counts.tolist() == [24] * len(s.images) for s in seqs)
    assert compile_cli("inspect", old, "--no-color", "--sequences", "1") == 0
    assert "[image 1: 24 tokens]" in capsys.readouterr().out


def test_fixed_rule_writes_the_count_member_and_the_manifest_keeps_the_integer(mixed_source, tmp_path):
    out = tmp_path / "fixed"
    assert _compile(mixed_source, out, "--image-tokens", "fixed:24") == 0
    cfg = json.loads((out / "manifest.json").read_text())["config"]
    assert cfg["image_tokens"] == 24 and cfg["image_token_rule"] == "fixed:24"
    for s in read_samples(out / "shard-000000.tar"):
        n = sum(k.startswith("img") for k in s)
        assert ("image_tokens.npy" in s) == (n > 0) and "image_tiles.npy" not in s
        if n:
            assert s["image_tokens.npy"].tolist() == [24] * n


@pytest.mark.parametrize("rule,message", [("tiles:size=3", "not KEY=N"), ("fixed:0", "must be > 0"),
                                          ("processor:/nonexistent", "no such folder"), ("grid:2", "unknown rule")])
def test_a_bad_rule_is_a_one_line_usage_error(mixed_source, tmp_path, capsys, rule, message):
    assert _compile(mixed_source, tmp_path / "x", "--image-tokens", rule) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("algorithm", ["fill", "best-fit", "lp"])
def test_packing_never_overflows_with_mixed_counts(algorithm):
    rng = np.random.default_rng(5)
    docs = []
    for i in range(3000):
        n_img = int(rng.integers(0, 4))
        counts = tuple(int(c) for c in rng.choice([64, 256, 576, 1280, 2880], size=n_img))
        n = int(rng.integers(n_img + 1, 400))
        if n - n_img + sum(counts) > 4096:
            counts = counts[:1]
            n_img = len(counts)
        docs.append(Document(provenance=Provenance(source="s", index=i, id=None), tokens=np.zeros(n, np.int32),
                             classes=np.zeros(n, np.uint8), weights=np.zeros(n, np.float32),
                             images=(None,) * n_img, image_counts=counts))  # type: ignore[arg-type]
    packed = list(make_packer(PackSettings(seq_len=4096, image_tokens=1, window=1000, algorithm=algorithm)).run(docs))
    assert sorted(d.provenance.index for s in packed for d in s.docs) == list(range(len(docs)))
    for s in packed:
        assert s.length == sum(d.n_tokens - len(d.image_counts) + sum(d.image_counts) for d in s.docs) <= 4096


def _copy_with(src: Path, dst: Path, *, edit=lambda name, a: a, drop=lambda name: False, version1=False) -> Path:
    """A copy of a compile with shard members edited or dropped, and the manifest's checksums made to match, so
    that verify sees only the change under test."""
    import hashlib
    import shutil

    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for entry in manifest["shards"]:
        path = dst / entry["name"]
        with tarfile.open(path) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for m, data in members:
                if drop(m.name):
                    continue
                if m.name.endswith(".npy"):
                    buf = io.BytesIO()
                    np.save(buf, edit(m.name, np.load(io.BytesIO(data))))
                    data = buf.getvalue()
                m.size = len(data)
                tar.addfile(m, io.BytesIO(data))
        entry["bytes"] = path.stat().st_size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    if version1:
        manifest["format"]["version"] = 1
        del manifest["config"]["image_token_rule"]
    (dst / "manifest.json").write_text(json.dumps(manifest))
    # The rewritten tars have other sample offsets: index them again, as the compiler does, so that energon's
    # metadata (which verify checks) describes them.
    from litdata.shards.energon import EnergonShard, write_nv_meta

    write_nv_meta(dst, [EnergonShard(name=e["name"], sequences=e["sequences"]) for e in manifest["shards"]])
    return dst


def test_truncation_keeps_each_image_whole_and_the_longest_prefix_that_fits():
    import dataclasses

    from litdata.classes import class_weights
    from litdata.demo import DEMO_TOKENIZER_DIR
    from litdata.encode import Encoder, EncodeSpec
    from litdata.records import Conversation, ImageRef, Role, Turn
    from litdata.records.document import ImageBlob

    rule = parse_rule(RULE)
    sizes = [(2000, 100), (448, 448), (1000, 1000), (900, 300)]
    spec = EncodeSpec(tokenizer=str(DEMO_TOKENIZER_DIR), template="vicuna_v1", weights=class_weights("lit"),
                      seq_len=4096, image_tokens=1, overflow="truncate", image_root=None, max_pixels=10**8,
                      image_rule=rule)
    enc = Encoder(spec)
    enc._images = lambda conv: tuple(ImageBlob(ext="png", data=b"", width=w, height=h) for w, h in sizes)
    text = "Look: <image> and <image> then some words in between <image> and finally <image> what is it?"
    conv = Conversation(provenance=Provenance(source="t.json", index=0, id="t"), images=tuple(
        ImageRef(path=f"{i}.png") for i in range(len(sizes))), turns=(Turn(role=Role.USER, text=text),
                                                                     Turn(role=Role.ASSISTANT, text="A red circle.")))
    (full,) = enc.encode_batch([conv])
    counts = [rule.count(w, h).tokens for w, h in sizes]
    assert list(full.image_counts) == counts and len(set(counts)) >= 3
    image_id = enc.tokinfo.image_token_id
    width = np.where(full.tokens == image_id, 0, 1)
    width[full.tokens == image_id] = counts
    for seq_len in range(20, full.expanded_length() + 1, 3):
        enc.spec = dataclasses.replace(spec, seq_len=seq_len)
        (doc,) = enc.encode_batch([conv])
        k = doc.n_tokens
        assert int(np.count_nonzero(doc.tokens == image_id)) == len(doc.image_counts) == len(doc.images)
        assert list(doc.image_counts) == counts[: len(doc.image_counts)]
        assert doc.expanded_length() == int(width[:k].sum()) <= seq_len
        if k < full.n_tokens:  # the longest prefix: the next token (or its whole image) would not fit
            assert doc.expanded_length() + int(width[k]) > seq_len
