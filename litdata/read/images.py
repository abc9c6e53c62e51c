"""Resolve and verify one image (run in worker processes): a safe path under --image-root, or embedded bytes.

The image is decoded fully so that a corrupt file is rejected here instead of failing training later. A file is
read once (`litdata.images.file`: no symlink at open, a regular file, size bounded before reading), and those bytes
are what is decoded; only their sha256 and size are kept, and the shard writer checks its copy against them.
Only raster formats are opened: Pillow's EPS/PS plugins would run Ghostscript on any file that claims to be one.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import sys
import warnings
from pathlib import Path, PureWindowsPath
from typing import BinaryIO, NamedTuple

from PIL import Image

from litdata import fsio
from litdata.images.file import RASTER_FORMATS, ImageFileError, read_image_file
from litdata.records import ImageRef, RecordProblem, RejectReason
from litdata.records.document import ImageBlob

DEFAULT_MAX_IMAGE_BYTES = 64 * 2**20
_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
_SEPARATORS = re.compile(r"[\\/]")


class _Decoded(NamedTuple):
    ext: str
    width: int
    height: int


def resolve_image(ref: ImageRef, *, image_root: Path | str | None, max_pixels: int,
                  max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> ImageBlob:
    """`image_root` is a local folder, or an fsspec URL (s3://bucket/images) whose images are fetched here.
    Raises RecordProblem (image_missing, image_unsafe_path, image_too_large, image_undecodable)."""
    if ref.data is not None:
        name = f"embedded image {ref.path or ''}".rstrip()
        if len(ref.data) > max_bytes:
            raise RecordProblem(RejectReason.IMAGE_TOO_LARGE, f"{name} is {len(ref.data)} bytes, more than the "
                                                              f"limit of {max_bytes} bytes (--max-image-bytes)")
        decoded = _decode(io.BytesIO(ref.data), name, max_pixels)
        return ImageBlob(ext=decoded.ext, data=ref.data, width=decoded.width, height=decoded.height)
    if ref.path is None:
        raise RecordProblem(RejectReason.IMAGE_MISSING, "the image has neither a path nor embedded bytes")
    if image_root is None:
        raise RecordProblem(RejectReason.IMAGE_MISSING,
                            f"image {ref.path!r} is a path relative to the image root, and no --image-root was given")
    if isinstance(image_root, str) and fsio.is_url(image_root):
        return _resolve_remote(ref.path, image_root, max_pixels, max_bytes)
    real = safe_image_path(ref.path, image_root)
    try:
        data = _read_once(real, ref.path, image_root, max_bytes)
    except RecordProblem:
        # The check may have trusted a directory resolved for an earlier image (`_fast_real_path`): the image is
        # then checked from scratch, and what that check says is the answer, as it was before the shortcut.
        # A file that fails to read under the path that check gives fails as it did without the shortcut.
        if (rechecked := _checked_path(ref.path, image_root)) == real:
            raise
        real, data = rechecked, _read_once(rechecked, ref.path, image_root, max_bytes)
    decoded = _decode(io.BytesIO(data), f"image {ref.path!r}", max_pixels)
    return ImageBlob(ext=decoded.ext, path=real, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                     width=decoded.width, height=decoded.height)


def _read_once(real: str, rel: str, image_root: Path, max_bytes: int) -> bytes:
    """The bytes of `real`, opened so that what is read is the file that `safe_image_path` checked."""
    try:
        data, opened = read_image_file(real, max_bytes=max_bytes)
    except ImageFileError as e:
        reason = {"too_large": RejectReason.IMAGE_TOO_LARGE, "missing": RejectReason.IMAGE_MISSING,
                  "not_regular": RejectReason.IMAGE_MISSING, "symlink": RejectReason.IMAGE_UNSAFE_PATH,
                  }.get(e.kind, RejectReason.IMAGE_UNDECODABLE)
        limit = " (--max-image-bytes)" if e.kind == "too_large" else ""
        raise RecordProblem(reason, f"image {rel!r} under the image root {image_root} {e}{limit}") from None
    if opened != real:  # a directory on the way was swapped for a symlink after the path was resolved
        raise RecordProblem(RejectReason.IMAGE_UNSAFE_PATH, f"image {rel!r} resolved to {real} but opened as {opened}")
    return data


def _refuse_unsafe(rel: str) -> None:
    """RecordProblem when `rel` could name something outside the image root."""
    unsafe = RejectReason.IMAGE_UNSAFE_PATH
    if "\x00" in rel:
        raise RecordProblem(unsafe, f"image path {rel!r} contains a NUL byte")
    if rel.startswith(("/", "\\")) or os.path.isabs(rel) or PureWindowsPath(rel).drive:
        raise RecordProblem(unsafe, f"image path {rel!r} is absolute; image paths must be relative to --image-root")
    if ".." in _SEPARATORS.split(rel):
        raise RecordProblem(unsafe, f"image path {rel!r} contains a '..' component")


def _resolve_remote(rel: str, root: str, max_pixels: int, max_bytes: int) -> ImageBlob:
    """An image under a URL root: the same path checks, then its bytes are fetched and kept (the shard writer,
    possibly on another machine, copies them unchanged without a second fetch). Object stores have no
    symlinks, so the lexical checks are the whole of the safety check."""
    _refuse_unsafe(rel)
    url = fsio.join(root, rel.replace("\\", "/"))
    try:
        if (size := fsio.size(url)) > max_bytes:  # asked before fetching, as fstat is for a local file
            raise RecordProblem(RejectReason.IMAGE_TOO_LARGE, f"image {rel!r} is {size} bytes, more than the "
                                                              f"limit of {max_bytes} bytes (--max-image-bytes)")
        data = fsio.read_bytes(url)
    except FileNotFoundError:
        raise RecordProblem(RejectReason.IMAGE_MISSING,
                            f"image {rel!r} not found under the image root {root}") from None
    except OSError as e:
        raise RecordProblem(RejectReason.IMAGE_MISSING,
                            f"image {rel!r} under the image root {root} cannot be read: {e}") from None
    decoded = _decode(io.BytesIO(data), f"image {rel!r}", max_pixels)
    return ImageBlob(ext=decoded.ext, data=data, width=decoded.width, height=decoded.height)


def safe_image_path(rel: str, image_root: Path) -> str:
    """The real path of `rel` under `image_root`; RecordProblem for anything that could read outside it.

    Most images are regular files in plain directories under the root: `_fast_real_path` finds their path with
    one lstat instead of resolving every component of the root and of `rel` again (about 90 us of Python per
    image, as much as decoding a small one). Anything else is resolved from scratch by `_checked_path`."""
    _refuse_unsafe(rel)
    fast = _fast_real_path(rel, image_root)
    return fast if fast is not None else _checked_path(rel, image_root)


def _checked_path(rel: str, image_root: Path) -> str:
    """`safe_image_path` from scratch: every component resolved, for a `rel` that `_refuse_unsafe` passed."""
    root = os.path.realpath(image_root)
    real = os.path.realpath(os.path.join(root, rel))
    if os.path.commonpath([root, real]) != root:
        raise RecordProblem(RejectReason.IMAGE_UNSAFE_PATH,
                            f"image path {rel!r} resolves (through a symlink) to {real}, outside the image root {root}")
    if not os.path.exists(real):
        raise RecordProblem(RejectReason.IMAGE_MISSING, f"image {rel!r} not found under the image root {image_root}")
    if not os.path.isfile(real):
        raise RecordProblem(RejectReason.IMAGE_MISSING,
                            f"image {rel!r} under the image root {image_root} is not a regular file")
    return real


# What `_fast_real_path` learnt from earlier images, per process. Both are only ever a reason to try the short
# way: the descriptor-path comparison in `_read_once` and the check from scratch after any failure decide.
_ROOTS: dict[str, tuple[str, int, int]] = {}  # an image root as given -> (its real path, st_dev, st_ino)
_PLAIN_DIRS: set[tuple[str, str]] = set()  # (real root, directory part of a rel) that resolved to itself
_PLAIN_DIRS_MAX = 1 << 16  # a dataset with a directory per image must not grow the set without bound
# Only where the opened descriptor names its own path (litdata.images.file._descriptor_path): elsewhere a folder
# swapped since it was learnt would not be seen when the file is opened.
_SHORT_WAY = os.sep == "/" and os.altsep is None and (sys.platform == "darwin" or os.path.isdir("/proc/self/fd"))


def _fast_real_path(rel: str, image_root: Path) -> str | None:
    """What `_checked_path` returns for `rel`, found without resolving every component, or None when this way
    does not know. It knows only a regular file (lstat: not a symlink) in a directory that resolved to itself
    (no symlink on the way) when an earlier image was checked, under a root that is still the same directory
    (os.stat identity) as when its real path was taken.

    A directory swapped for a symlink since then is not seen here: it is seen when the file is opened (the
    descriptor's own path is not this one), and `resolve_image` then checks the image from scratch."""
    parts = rel.split("/")
    if not _SHORT_WAY or "" in parts or "." in parts:  # not in normal form: realpath normalizes it
        return None
    given = os.fspath(image_root)
    try:
        st = os.stat(given)
    except OSError:
        return None
    known = _ROOTS.get(given)
    if known is None or (known[1], known[2]) != (st.st_dev, st.st_ino):
        known = _ROOTS[given] = (os.path.realpath(given), st.st_dev, st.st_ino)
    root = known[0]
    folder = (root, rel.rpartition("/")[0])
    learnt = not folder[1] or folder in _PLAIN_DIRS  # the root itself is real
    if not learnt and os.path.realpath(joined := os.path.join(*folder)) != joined:
        return None
    real = os.path.join(root, rel)
    try:
        mode = os.lstat(real).st_mode
    except OSError:  # missing, or a component is not a directory: the check from scratch words it
        return None
    if not stat.S_ISREG(mode):
        return None
    if not learnt:
        if len(_PLAIN_DIRS) >= _PLAIN_DIRS_MAX:
            _PLAIN_DIRS.clear()
        _PLAIN_DIRS.add(folder)
    return real


def _decode(source: BinaryIO, name: str, max_pixels: int) -> _Decoded:
    try:
        with warnings.catch_warnings():
            # Our own limit decides; Pillow's warning threshold is a process-wide default.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=RASTER_FORMATS) as im:
                width, height = im.size
                if width * height > max_pixels:  # checked from the header, before any pixel is decoded
                    raise RecordProblem(RejectReason.IMAGE_TOO_LARGE, f"{name} is {width}x{height} = {width * height}"
                                                                      f" pixels, more than max_pixels={max_pixels}")
                im.load()
                fmt = im.format or "unknown"
    except RecordProblem:  # the pixel bound above, not a decoding error
        raise
    except Image.DecompressionBombError as e:
        raise RecordProblem(RejectReason.IMAGE_TOO_LARGE, f"{name}: {e}") from None
    except Image.UnidentifiedImageError:  # its message names the BytesIO object, which is not stable across runs
        formats = ", ".join(RASTER_FORMATS)
        raise RecordProblem(RejectReason.IMAGE_UNDECODABLE,
                            f"{name} cannot be decoded: not an image in one of {formats}") from None
    # Pillow raises many types for bad data (OSError, SyntaxError, ValueError, struct.error, ...).
    except Exception as e:  # noqa: BLE001
        raise RecordProblem(RejectReason.IMAGE_UNDECODABLE,
                            f"{name} cannot be decoded: {type(e).__name__}: {e}") from None
    return _Decoded(ext=_EXT.get(fmt, fmt.lower()), width=width, height=height)
