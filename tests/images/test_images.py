"""resolve_image: safe paths under the image root, and images that really decode."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from litdata.read import resolve_image
from litdata.records import ImageRef, RecordProblem, RejectReason
from litdata.records.document import ImageBlob

MAX = 10_000_000


def save(path: Path, size=(8, 6), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 120, 200)).save(path, format=fmt)
    return path


def encoded(size=(8, 6), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buf, format=fmt)
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR that claim a huge size, with no pixel data behind them."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "images"
    save(r / "coco" / "a.png")
    save(r / "coco" / "b.jpg", size=(20, 10), fmt="JPEG")
    return r


def resolve(path: str, root: Path | None, max_pixels: int = MAX):
    return resolve_image(ImageRef(path=path), image_root=root, max_pixels=max_pixels)


def refusal(ref: ImageRef, root: Path | None, max_pixels: int = MAX, **kw) -> tuple[RejectReason, str]:
    """The reason and detail of the RecordProblem that resolve_image must raise for `ref`."""
    with pytest.raises(RecordProblem) as refused:
        resolve_image(ref, image_root=root, max_pixels=max_pixels, **kw)
    return refused.value.reason, refused.value.detail


def refused(path: str, root: Path | None, max_pixels: int = MAX) -> tuple[RejectReason, str]:
    return refusal(ImageRef(path=path), root, max_pixels)


def checked(path: Path) -> dict:
    """What a blob records about a file's bytes, instead of the bytes themselves."""
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_good_png_and_jpeg_resolve_to_their_real_paths(root):
    png, jpg = resolve("coco/a.png", root), resolve("coco/b.jpg", root)
    a, b = root / "coco/a.png", root / "coco/b.jpg"
    assert png == ImageBlob(ext="png", path=os.path.realpath(a), width=8, height=6, **checked(a))
    assert jpg == ImageBlob(ext="jpg", path=os.path.realpath(b), width=20, height=10, **checked(b))
    assert png.data is None and png.read() == a.read_bytes()


def test_extension_comes_from_the_decoded_format_not_the_name(root):
    save(root / "mislabelled.jpg", fmt="PNG")
    save(root / "pic.webp", fmt="WEBP")
    assert resolve("mislabelled.jpg", root).ext == "png"
    assert resolve("pic.webp", root).ext == "webp"


def test_symlink_inside_the_root_is_followed(root):
    (root / "alias.png").symlink_to(root / "coco" / "a.png")
    assert resolve("alias.png", root).path == os.path.realpath(root / "coco/a.png")


@pytest.mark.parametrize(
    "path, why",
    [
        ("../outside.png", "contains a '..' component"),
        ("coco/../../outside.png", "contains a '..' component"),
        ("coco\\..\\..\\outside.png", "contains a '..' component"),
        ("/etc/passwd", "is absolute"),
        ("\\\\server\\share\\x.png", "is absolute"),
        ("C:\\images\\x.png", "is absolute"),
        ("coco/a.png\x00.txt", "NUL byte"),
    ],
)
def test_paths_that_could_leave_the_root_are_unsafe(root, path, why):
    save(root.parent / "outside.png")
    reason, message = refused(path, root)
    assert reason is RejectReason.IMAGE_UNSAFE_PATH and why in message


def test_symlink_escaping_the_root_is_unsafe(root):
    secret = save(root.parent / "secret" / "s.png")
    (root / "coco" / "escape.png").symlink_to(secret)
    (root / "dirlink").symlink_to(secret.parent, target_is_directory=True)
    for path in ("coco/escape.png", "dirlink/s.png"):
        reason, message = refused(path, root)
        assert reason is RejectReason.IMAGE_UNSAFE_PATH and "outside the image root" in message


def test_missing_file_and_directory_are_missing(root):
    reason, message = refused("coco/nope.png", root)
    assert reason is RejectReason.IMAGE_MISSING and "'coco/nope.png' not found" in message
    reason, message = refused("coco", root)
    assert reason is RejectReason.IMAGE_MISSING and "not a regular file" in message


def test_path_without_image_root_asks_for_it():
    reason, message = refused("coco/a.png", None)
    assert reason is RejectReason.IMAGE_MISSING and "--image-root" in message


def test_garbage_and_truncated_files_are_undecodable(root):
    (root / "garbage.png").write_bytes(b"this is not an image at all" * 10)
    reason, message = refused("garbage.png", root)
    assert reason is RejectReason.IMAGE_UNDECODABLE and "cannot be decoded" in message
    whole = encoded(size=(64, 64), fmt="JPEG")
    (root / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    reason, message = refused("cut.jpg", root)
    assert reason is RejectReason.IMAGE_UNDECODABLE and "truncated" in message.lower()


def test_pixel_limit_is_checked_from_the_header_before_decoding(root):
    (root / "bomb.png").write_bytes(png_header_claiming(10_000, 5_000))
    reason, message = refused("bomb.png", root)
    assert reason is RejectReason.IMAGE_TOO_LARGE
    assert "10000x5000 = 50000000 pixels, more than max_pixels=10000000" in message
    # Far beyond Pillow's own bomb limit: Pillow refuses it while reading the header.
    (root / "huge.png").write_bytes(png_header_claiming(100_000, 100_000))
    reason, message = refused("huge.png", root, max_pixels=10**11)
    assert reason is RejectReason.IMAGE_TOO_LARGE and "10000000000 pixels" in message


def test_real_image_over_the_pixel_limit(root):
    save(root / "big.png", size=(2000, 2000))
    reason, message = refused("big.png", root, max_pixels=1_000_000)
    assert reason is RejectReason.IMAGE_TOO_LARGE and "2000x2000" in message
    assert isinstance(resolve("big.png", root, max_pixels=4_000_000), ImageBlob)


def test_embedded_bytes_decode_without_a_root():
    data = encoded(size=(5, 7), fmt="JPEG")
    blob = resolve_image(ImageRef(path="photo.jpg", data=data), image_root=None, max_pixels=MAX)
    assert blob == ImageBlob(ext="jpg", data=data, width=5, height=7)
    reason, message = refusal(ImageRef(path="x.png", data=b"\x89PNG garbage"), None)
    assert reason is RejectReason.IMAGE_UNDECODABLE and "embedded image x.png" in message
    reason, _ = refusal(ImageRef(data=png_header_claiming(5000, 5000)), None)
    assert reason is RejectReason.IMAGE_TOO_LARGE


def test_ref_with_neither_path_nor_bytes(root):
    reason, _ = refusal(ImageRef(), root)
    assert reason is RejectReason.IMAGE_MISSING


# --- bounded bytes, one read, raster formats only ---------------------------------------------------------------

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\n%%EndComments\nnewpath 0 0 moveto 64 48 lineto stroke\n"


def test_an_image_file_over_the_byte_limit_is_rejected_before_it_is_read(root, monkeypatch):
    big = root / "tail.jpg"
    big.write_bytes(encoded(size=(64, 48), fmt="JPEG"))
    with open(big, "r+b") as f:
        f.truncate(300 * 2**20)  # a valid JPEG with a 300 MB (sparse) tail, which decodes fine
    monkeypatch.setattr(os, "read", lambda *a: pytest.fail("the file was read although fstat shows it too large"))
    reason, message = refused("tail.jpg", root)
    assert reason is RejectReason.IMAGE_TOO_LARGE
    assert f"is {300 * 2**20} bytes, more than the limit of {64 * 2**20} bytes (--max-image-bytes)" in message
    monkeypatch.undo()
    small = encoded(size=(64, 48), fmt="JPEG")
    (root / "small.jpg").write_bytes(small)
    assert resolve_image(ImageRef(path="small.jpg"), image_root=root, max_pixels=MAX, max_bytes=len(small)).size
    reason, _ = refusal(ImageRef(path="small.jpg"), root, max_bytes=len(small) - 1)
    assert reason is RejectReason.IMAGE_TOO_LARGE


def test_embedded_bytes_over_the_byte_limit_are_rejected():
    data = encoded(size=(64, 48), fmt="PNG")
    reason, message = refusal(ImageRef(data=data), None, max_bytes=len(data) - 1)
    assert reason is RejectReason.IMAGE_TOO_LARGE and f"more than the limit of {len(data) - 1} bytes" in message


def test_a_fifo_is_refused_without_hanging(root):
    os.mkfifo(root / "pipe.png")
    reason, message = refused("pipe.png", root)
    assert reason is RejectReason.IMAGE_MISSING and "not a regular file" in message


def swap_after_check(monkeypatch, swap):
    """Run `swap()` right after safe_image_path has checked the path: the race a hostile file system wins."""
    from litdata.read import images

    checked = images.safe_image_path

    def then_swap(rel, image_root):
        real = checked(rel, image_root)
        swap()
        return real

    monkeypatch.setattr(images, "safe_image_path", then_swap)


def test_a_file_swapped_for_a_symlink_after_the_check_is_unsafe(root, monkeypatch):
    secret = save(root.parent / "secret" / "s.png")
    target = root / "coco" / "a.png"

    def swap():
        target.unlink()
        target.symlink_to(secret)

    swap_after_check(monkeypatch, swap)
    reason, message = refused("coco/a.png", root)
    assert reason is RejectReason.IMAGE_UNSAFE_PATH and "symlink" in message


def test_a_folder_swapped_for_a_symlink_after_the_check_is_unsafe(root, monkeypatch):
    save(root.parent / "secret" / "a.png", size=(3, 3))

    def swap():
        (root / "coco").rename(root / "old")
        (root / "coco").symlink_to(root.parent / "secret", target_is_directory=True)

    swap_after_check(monkeypatch, swap)
    reason, message = refused("coco/a.png", root)
    assert reason is RejectReason.IMAGE_UNSAFE_PATH and "secret" in message


@pytest.mark.parametrize("change", ["rewrite", "symlink"])
def test_the_writer_copies_only_the_bytes_that_were_checked(root, change):
    from litdata.images.file import ImageChangedError

    blob = resolve("coco/a.png", root)
    target = root / "coco" / "a.png"
    if change == "rewrite":
        save(target, size=(9, 9))  # still a valid image, other bytes
    else:
        target.unlink()
        target.symlink_to(save(root.parent / "secret" / "s.png"))
    with pytest.raises(ImageChangedError, match="a.png"):
        blob.read()


def test_postscript_is_never_handed_to_ghostscript(root, monkeypatch):
    from PIL import EpsImagePlugin

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    (root / "cat.jpg").write_bytes(EPS)
    reason, message = refused("cat.jpg", root)
    assert reason is RejectReason.IMAGE_UNDECODABLE and "not an image in one of PNG, JPEG" in message
    reason, _ = refusal(ImageRef(data=EPS), None)
    assert reason is RejectReason.IMAGE_UNDECODABLE
    assert calls == []


def test_the_loader_refuses_postscript_with_the_error_skip_corrupt_handles(monkeypatch):
    from PIL import EpsImagePlugin

    from adapters.megatron.images import ImageSpec, preprocess

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    with pytest.raises(ValueError, match="undecodable image"):
        preprocess(EPS, ImageSpec(size=8))
    assert calls == []
    assert preprocess(encoded(size=(5, 7), fmt="JPEG"), ImageSpec(size=8)).shape == (3, 8, 8)


def test_postscript_in_a_shard_is_skipped_by_skip_corrupt_without_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    from adapters.megatron.data import PackedShardDataset
    from adapters.megatron.images import ImageSpec
    from tests.helpers.shard_fixtures import edit_shard, refresh_manifest, write_shards

    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    fx = write_shards(tmp_path / "out", documents=30, seq_len=256, images=True, sequences_per_shard=50)
    victim = next(s for s in fx.sequences if s.images)
    edit_shard(fx.shard_path(0), lambda name, data: EPS if name == f"{victim.key}.img000.png" else data)
    refresh_manifest(fx.out)
    ds = PackedShardDataset(fx.out, shuffle=False, image_spec=ImageSpec(size=8), skip_corrupt=True)
    assert [s.key for s in ds] == [k for k in fx.keys if k != victim.key]
    assert ds.stats.sequences_skipped == 1 and calls == []
