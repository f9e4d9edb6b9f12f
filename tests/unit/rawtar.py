"""Tar archives written byte by byte, for headers no well-behaved writer produces.

`header` fills a 512-byte block field by field (ustar layout), so a test can
set a GNU or V7 magic with a non-empty prefix field, a base-256 size, a NUL
in a name or a bad checksum; `pax` writes extended-header records in order.
"""

from __future__ import annotations

import gzip
import struct
import zlib

POSIX = b"ustar\x0000"
GNU = b"ustar  \x00"
V7 = b"\x00" * 8
EPOCH = 315532800


def header(
    name: bytes,
    *,
    kind: bytes = b"0",
    size: int = 0,
    link: bytes = b"",
    mode: int = 0o644,
    magic: bytes = POSIX,
    prefix: bytes = b"",
    size_field: bytes | None = None,
    checksum: int | None = None,
) -> bytes:
    buf = bytearray(512)
    buf[0:100] = name.ljust(100, b"\0")[:100]
    buf[100:108] = b"%07o\0" % mode
    buf[108:116] = b"%07o\0" % 0
    buf[116:124] = b"%07o\0" % 0
    buf[124:136] = size_field if size_field is not None else b"%011o\0" % size
    buf[136:148] = b"%011o\0" % EPOCH
    buf[148:156] = b" " * 8
    buf[156:157] = kind
    buf[157:257] = link.ljust(100, b"\0")[:100]
    buf[257:265] = magic
    buf[345:500] = prefix.ljust(155, b"\0")[:155]
    buf[148:156] = b"%06o\0 " % (sum(buf) if checksum is None else checksum)
    return bytes(buf)


def base256(value: int) -> bytes:
    """A 12-byte size field in GNU's base-256 form (negative values in two's complement)."""
    return bytes([0xFF if value < 0 else 0x80]) + (value % 256**11).to_bytes(11, "big")


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def pax(*records: tuple[bytes, bytes], kind: bytes = b"x") -> bytes:
    """A pax extended header with `records` in the given order."""
    body = b""
    for key, value in records:
        line = b" %s=%s\n" % (key, value)
        n = len(line) + 1
        while len(str(n)) + len(line) != n:
            n += 1
        body += str(n).encode() + line
    return header(b"././@PaxHeader", kind=kind, size=len(body)) + pad(body)


def file(name: bytes, data: bytes = b"x", **kw: object) -> bytes:
    return header(name, size=len(data), **kw) + pad(data)  # type: ignore[arg-type]


def directory(name: bytes, mode: int = 0o755) -> bytes:
    return header(name, kind=b"5", mode=mode)


def symlink(name: bytes, target: bytes, **kw: object) -> bytes:
    return header(name, kind=b"2", link=target, mode=0o777, **kw)  # type: ignore[arg-type]


def hardlink(name: bytes, target: bytes) -> bytes:
    return header(name, kind=b"1", link=target)


def tar(*parts: bytes) -> bytes:
    return b"".join(parts) + b"\0" * 1024


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def polyglot(plain: bytes, inflated: bytes) -> bytes:
    """One file that is a plain tar (`plain`'s members) and a gzip of `inflated`.

    The gzip header's FEXTRA field hides the plain tar: its first block
    starts with the gzip magic (a member named "\\x1f\\x8b\\x08\\x04"), the
    rest of `plain` follows inside the extra field, and the deflate stream
    of `inflated` comes after the tar's end blocks, where tar readers stop.
    """
    first = bytearray(header(b"", size=0))
    body = bytes(first) + plain
    gzip_head = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\x00\x03" + struct.pack("<H", len(body) - 12)
    first[0:12] = gzip_head
    first[148:156] = b" " * 8
    first[148:156] = b"%06o\0 " % sum(first)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = deflate.compress(inflated) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(inflated), len(inflated) & 0xFFFFFFFF)
    return bytes(first) + plain + stream + trailer
