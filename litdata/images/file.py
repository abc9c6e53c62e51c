"""Read an image file safely, so that the bytes copied into a shard are exactly the bytes that were checked.

Checking a path and reopening it later lets the file be swapped (for a symlink to a secret, say) in between. So:
- the file is opened with O_NOFOLLOW (a symlink at the last component is refused) and O_NONBLOCK (a FIFO does
  not hang the open), and fstat must say it is a regular file;
- the opened descriptor's own path (/proc/self/fd on Linux, F_GETPATH on macOS) is returned for the caller to
  check, which catches a directory component swapped for a symlink between resolving the path and opening it;
- the size is bounded from fstat before anything is read, and the read stops one byte past the bound, so a
  file that grows while it is read cannot make it allocate more.
The checker (`litdata.read.images`) keeps only the sha256 and size of what it decoded (memory stays flat while
a packing window holds thousands of documents); the shard writer reads the file again with `read_verified`,
which fails the compile if the bytes are not the ones checked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys

# The only Pillow plugins an image is opened with, in the compiler and the loader (Image.open(formats=...)):
# EPS/PS would run Ghostscript. MPO (multi-picture JPEG) comes through the JPEG plugin.
RASTER_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


class ImageFileError(Exception):
    """A file that cannot be read safely. `kind`: missing, symlink, not_regular, too_large or unreadable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ImageChangedError(Exception):
    """An image's bytes at write time differ from the bytes checked earlier in the same compile."""


_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_image_file(path: str, *, max_bytes: int) -> tuple[bytes, str]:
    """(the bytes of the regular file `path`, the path the opened descriptor resolves to).

    `path` should already be resolved (realpath): only its last component is refused as a symlink."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageFileError("symlink", "is a symlink at the moment it is opened") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ImageFileError("missing", "no longer exists when it is opened") from None
        raise ImageFileError("unreadable", f"cannot be opened: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageFileError("not_regular", "is not a regular file")
        if st.st_size > max_bytes:
            raise ImageFileError("too_large", f"is {st.st_size} bytes, more than the limit of {max_bytes} bytes")
        opened = _descriptor_path(fd, path)
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise ImageFileError("too_large", f"grew past the limit of {max_bytes} bytes while it was read")
        return b"".join(chunks), opened
    except OSError as e:
        raise ImageFileError("unreadable", f"cannot be read: {e.strerror}") from None
    finally:
        os.close(fd)


def read_verified(path: str, *, sha256: str, size: int) -> bytes:
    """The bytes of `path`, which must be exactly the `size` bytes with `sha256` checked earlier."""
    try:
        data, opened = read_image_file(path, max_bytes=size)
    except ImageFileError as e:
        raise ImageChangedError(f"image {path} {e} (it was checked earlier in this compile); rerun it") from None
    if opened != path:
        raise ImageChangedError(f"image {path} now resolves to {opened} (it changed during the compile); rerun it")
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise ImageChangedError(f"image {path} changed after it was checked (sha256 differs); rerun the compile")
    return data


def _descriptor_path(fd: int, fallback: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    if sys.platform == "darwin":
        import fcntl

        raw = fcntl.fcntl(fd, fcntl.F_GETPATH, b"\0" * 1024)  # type: ignore[attr-defined]
        return os.fsdecode(raw.split(b"\0", 1)[0])
    # No way to ask the descriptor: at least require that the path still names the file that was opened.
    if not os.path.samestat(os.fstat(fd), os.stat(fallback, follow_symlinks=False)):
        raise ImageFileError("unreadable", "changed while it was opened")
    return fallback
