"""The tar bytes of a shard, built here instead of by `tarfile` (via webdataset's TarWriter), and the byte
layout of what was written, so that the energon index needs no second read of the shard.

The bytes are those TarWriter writes through `tarfile.open(mode="w|")` in its default PAX format (shards from
before this module must stay byte-identical): every member is a pax extended header (the float mtime asks for
one) + a ustar header + the data padded to 512 bytes; the archive ends with two zero blocks, padded to a multiple
of 10240 bytes. `tarfile` spends most of a shard's write time building headers field by field; here a member
whose name is short ASCII and whose size fits the ustar field (every member litdata writes) gets its header from
one template with the name, size and checksum put in; any other falls back to `tarfile` itself. Tests hold the
two to the same bytes.
"""

from __future__ import annotations

import tarfile

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_NAME, _SIZE, _CHKSUM = slice(0, 100), slice(124, 136), slice(148, 155)
_MAX_SIZE = 8**11  # the ustar size field: 11 octal digits; larger sizes need a pax "size" record


class MemberHeaders:
    """Header bytes of a regular member, as `tarfile.TarInfo.tobuf(PAX_FORMAT)` makes them for these fixed
    attributes (mtime, mode, uid/gid 0, user and group names)."""

    def __init__(self, *, mtime: float, mode: int, user: str, group: str) -> None:
        self.mtime, self.mode, self.user, self.group = mtime, mode, user, group
        full = self.reference("x", 0)
        # Everything before the ustar block is the pax header: it depends on no name or size on the fast path.
        self._pax, ustar = full[:-BLOCK], bytearray(full[-BLOCK:])
        ustar[_NAME] = bytes(100)
        ustar[_SIZE] = bytes(12)
        ustar[_CHKSUM.start:_CHKSUM.start + 8] = b" " * 8  # the checksum counts its own field as spaces
        self._template = bytes(ustar)
        self._base_sum = sum(ustar)

    def reference(self, name: str, size: int) -> bytes:
        """tarfile's header, the definition (and the path for names or sizes the template cannot take)."""
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uname, info.gname = size, self.mtime, self.mode, self.user, self.group
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")

    def header(self, name: str, size: int) -> bytes:
        raw = name.encode("ascii", "replace")
        if not name.isascii() or len(raw) > 100 or not 0 <= size < _MAX_SIZE:
            return self.reference(name, size)
        size_field = b"%011o\0" % size
        buf = bytearray(self._template)
        buf[0:len(raw)] = raw
        buf[_SIZE] = size_field
        buf[_CHKSUM] = b"%06o\0" % (self._base_sum + sum(raw) + sum(size_field))
        return self._pax + bytes(buf)


def padding(size: int) -> bytes:
    """The zero bytes that follow `size` bytes of member data up to the next block."""
    return bytes(-size % BLOCK)


def end_of_archive(offset: int) -> bytes:
    """What tarfile's close writes after the last member, which ends at `offset`: two zero blocks, then zeros up
    to a whole record."""
    end = offset + 2 * BLOCK
    return bytes(2 * BLOCK + (-end % RECORD))
