"""The short way to an image's real path (one lstat, with the root's real path and plain directories learnt from
earlier images) gives exactly what checking every image from scratch gives: the same blob, or the same reject
reason and message, whatever the layout, and also when the tree changes between two images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from litdata.read import images, resolve_image
from litdata.records import ImageRef, RecordProblem, RejectReason
from litdata.records.document import ImageBlob

MAX = 10_000_000


def save(path: Path, size=(8, 6), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 120, 200)).save(path, format=fmt)
    return path


def outcome(rel: str, root) -> ImageBlob | tuple[RejectReason, str]:
    try:
        return resolve_image(ImageRef(path=rel), image_root=root, max_pixels=MAX)
    except RecordProblem as p:
        return p.reason, p.detail


def from_scratch(rel: str, root, monkeypatch) -> ImageBlob | tuple[RejectReason, str]:
    """The outcome when every image is resolved component by component, as before the short way existed."""
    with monkeypatch.context() as m:
        m.setattr(images, "_fast_real_path", lambda rel, image_root: None)
        return outcome(rel, root)


@pytest.fixture(autouse=True)
def nothing_learnt(monkeypatch):
    """Each test starts with nothing learnt from earlier images."""
    monkeypatch.setattr(images, "_ROOTS", {})
    monkeypatch.setattr(images, "_PLAIN_DIRS", set())


@pytest.fixture
def tree(tmp_path) -> Path:
    """An image root with every kind of entry an image path can name, and a secret folder beside it."""
    root = tmp_path / "images"
    save(root / "coco" / "a.png")
    save(root / "coco" / "b.jpg", size=(20, 10), fmt="JPEG")
    save(root / "deep" / "x" / "y" / "c.png")
    save(root / "other" / "a.png", size=(5, 5))
    save(tmp_path / "secret" / "s.png")
    save(tmp_path / "secret" / "a.png", size=(3, 3))
    (root / "alias.png").symlink_to(root / "coco" / "a.png")
    (root / "linked").symlink_to(root / "coco", target_is_directory=True)
    (root / "relative").symlink_to("coco", target_is_directory=True)
    (root / "escape.png").symlink_to(tmp_path / "secret" / "s.png")
    (root / "out").symlink_to(tmp_path / "secret", target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    (root / "garbage.png").write_bytes(b"not an image")
    os.mkfifo(root / "pipe.png")
    (tmp_path / "root_link").symlink_to(root, target_is_directory=True)
    return root


PATHS = [
    "coco/a.png", "coco/b.jpg", "deep/x/y/c.png", "alias.png", "linked/a.png", "relative/b.jpg", "escape.png",
    "out/s.png", "loop/a.png", "coco/nope.png", "nope/a.png", "coco", "pipe.png", "garbage.png", "coco//a.png",
    "./coco/a.png", "coco/./a.png", "coco/a.png/", "coco/a.png/x", "linked/../coco/a.png", "/etc/passwd",
]


@pytest.mark.parametrize("root_form", ["path", "str", "through a symlink"])
def test_every_kind_of_path_resolves_as_from_scratch_before_and_after_learning(tree, root_form, monkeypatch):
    root = {"path": tree, "str": str(tree), "through a symlink": tree.parent / "root_link"}[root_form]
    expected = {rel: from_scratch(rel, root, monkeypatch) for rel in PATHS}
    for _ in range(2):  # the first pass learns the root and the folders, the second one uses them
        assert {rel: outcome(rel, root) for rel in PATHS} == expected
    assert isinstance(expected["coco/a.png"], ImageBlob) and isinstance(expected["linked/a.png"], ImageBlob)
    assert expected["out/s.png"][0] is RejectReason.IMAGE_UNSAFE_PATH


def test_a_symlink_followed_inside_the_root_gives_the_real_path_of_its_target(tree):
    for rel in ("coco/a.png", "linked/a.png", "alias.png", "linked/a.png"):
        assert outcome(rel, tree).path == os.path.realpath(tree / "coco" / "a.png")


def swap_folder_for_symlink(tree: Path, target: Path) -> None:
    (tree / "coco").rename(tree / "old")
    (tree / "coco").symlink_to(target, target_is_directory=True)


def test_a_folder_swapped_for_a_symlink_out_of_the_root_between_two_images(tree, monkeypatch):
    assert isinstance(outcome("coco/a.png", tree), ImageBlob)  # learns that coco is a plain folder
    swap_folder_for_symlink(tree, tree.parent / "secret")
    got = outcome("coco/a.png", tree)
    assert got == from_scratch("coco/a.png", tree, monkeypatch)
    assert got[0] is RejectReason.IMAGE_UNSAFE_PATH and "outside the image root" in got[1]


def test_a_folder_swapped_for_a_symlink_inside_the_root_between_two_images_is_followed(tree, monkeypatch):
    assert outcome("coco/a.png", tree).width == 8
    swap_folder_for_symlink(tree, tree / "other")
    got = outcome("coco/a.png", tree)
    assert got == from_scratch("coco/a.png", tree, monkeypatch)
    assert got.path == os.path.realpath(tree / "other" / "a.png") and got.width == 5


@pytest.mark.parametrize("change", ["folder removed", "folder now a file", "file now a folder", "file now a FIFO"])
def test_a_tree_changed_between_two_images_is_refused_as_from_scratch(tree, change, monkeypatch):
    assert isinstance(outcome("coco/a.png", tree), ImageBlob)
    if change == "folder removed":
        (tree / "coco").rename(tree / "old")
    elif change == "folder now a file":
        (tree / "coco").rename(tree / "old")
        (tree / "coco").write_bytes(b"x")
    elif change == "file now a folder":
        (tree / "coco" / "a.png").unlink()
        (tree / "coco" / "a.png").mkdir()
    else:
        (tree / "coco" / "a.png").unlink()
        os.mkfifo(tree / "coco" / "a.png")
    got = outcome("coco/a.png", tree)
    assert got == from_scratch("coco/a.png", tree, monkeypatch)
    assert got[0] is RejectReason.IMAGE_MISSING


def test_a_file_swapped_for_a_symlink_between_two_images(tree, monkeypatch):
    assert isinstance(outcome("coco/a.png", tree), ImageBlob)
    (tree / "coco" / "a.png").unlink()
    (tree / "coco" / "a.png").symlink_to(tree / "other" / "a.png")
    assert outcome("coco/a.png", tree).path == os.path.realpath(tree / "other" / "a.png")
    (tree / "coco" / "a.png").unlink()
    (tree / "coco" / "a.png").symlink_to(tree.parent / "secret" / "s.png")
    got = outcome("coco/a.png", tree)
    assert got == from_scratch("coco/a.png", tree, monkeypatch) and got[0] is RejectReason.IMAGE_UNSAFE_PATH


def test_a_root_pointed_elsewhere_between_two_images_is_resolved_again(tree, monkeypatch):
    link = tree.parent / "root_link"
    assert outcome("coco/a.png", link).width == 8
    save(tree.parent / "copy" / "coco" / "a.png", size=(5, 5))
    link.unlink()
    link.symlink_to(tree.parent / "copy", target_is_directory=True)
    got = outcome("coco/a.png", link)
    assert got == from_scratch("coco/a.png", link, monkeypatch)
    assert got.path == os.path.realpath(tree.parent / "copy" / "coco" / "a.png") and got.width == 5
