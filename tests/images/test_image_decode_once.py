"""Bytes decoded in full once in a process are known good: another image with the same bytes (under the same
limits) gives its own blob without being decoded again, and a bad or too large image is refused in its own
words every time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from litdata.read import images, resolve_image
from litdata.records import ImageRef, RecordProblem, RejectReason

MAX = 10_000_000


def save(path: Path, size=(8, 6), fmt="PNG", color=(10, 120, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def outcome(rel: str, root: Path, max_pixels: int = MAX):
    try:
        return resolve_image(ImageRef(path=rel), image_root=root, max_pixels=max_pixels)
    except RecordProblem as p:
        return p.reason, p.detail


@pytest.fixture(autouse=True)
def nothing_decoded(monkeypatch):
    monkeypatch.setattr(images, "_DECODED", {})


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The names of the images Pillow is asked to decode, in order."""
    seen: list[str] = []
    decode = images._decode

    def counting(source, name, max_pixels):
        seen.append(name)
        return decode(source, name, max_pixels)

    monkeypatch.setattr(images, "_decode", counting)
    return seen


def test_the_same_bytes_under_another_name_give_their_own_blob_without_a_second_decode(tmp_path, decodes):
    a = save(tmp_path / "a.png", size=(9, 7))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "b.png").write_bytes(a.read_bytes())
    first, second = outcome("a.png", tmp_path), outcome("copy/b.png", tmp_path)
    assert (second.ext, second.width, second.height, second.sha256, second.size) == \
           (first.ext, first.width, first.height, first.sha256, first.size) == \
           ("png", 9, 7, hashlib.sha256(a.read_bytes()).hexdigest(), len(a.read_bytes()))
    assert second.path == os.path.realpath(tmp_path / "copy" / "b.png") != first.path
    assert decodes == ["image 'a.png'"]
    assert outcome("a.png", tmp_path) == first and decodes == ["image 'a.png'"]


def test_other_bytes_are_decoded(tmp_path, decodes):
    save(tmp_path / "a.png")
    save(tmp_path / "b.png", color=(1, 2, 3))
    assert outcome("a.png", tmp_path).sha256 != outcome("b.png", tmp_path).sha256
    assert decodes == ["image 'a.png'", "image 'b.png'"]


def test_a_bad_image_is_refused_in_its_own_words_every_time(tmp_path, decodes):
    good = save(tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "cut_too.png").write_bytes(good[: len(good) // 2])
    for rel in ("cut.png", "cut_too.png", "cut.png"):
        reason, message = outcome(rel, tmp_path)
        assert reason is RejectReason.IMAGE_UNDECODABLE and message.startswith(f"image {rel!r} cannot be decoded")
    assert decodes == ["image 'cut.png'", "image 'cut_too.png'", "image 'cut.png'"]


def test_bytes_known_good_under_one_pixel_limit_are_checked_again_under_another(tmp_path, decodes):
    save(tmp_path / "a.png", size=(10, 10))
    assert outcome("a.png", tmp_path).width == 10
    reason, message = outcome("a.png", tmp_path, max_pixels=99)
    assert reason is RejectReason.IMAGE_TOO_LARGE and message == \
           "image 'a.png' is 10x10 = 100 pixels, more than max_pixels=99"
    assert outcome("a.png", tmp_path, max_pixels=100).width == 10
    assert len(decodes) == 3


def test_what_is_kept_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_DECODED_MAX", 2)
    for k in range(5):
        save(tmp_path / f"{k}.png", color=(k, k, k))
        assert outcome(f"{k}.png", tmp_path).width == 8
        assert len(images._DECODED) <= 2
