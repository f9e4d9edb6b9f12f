"""Which compression an archive's bytes use, and a decompressed view `tarfile` can read.

Compression is recognised by magic bytes, never by a file's name: an
archive CI made may be called anything.  `inflated` refuses bytes that are
not what the artifact's format says (a plain tar whose metadata says
tar.gz), and gives `tarfile` a stream it may seek forwards, which is all a
bzip2 or xz reader over a hashing, non-rewindable source can offer.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from fleetdist.shipping.artifact import CHUNK

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Compression is recognised by its magic bytes, never by the file's name: an
# archive CI made may be called anything.  Anything else is read as a plain tar.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


# What each archive format's bytes must start as: metadata saying tar.gz over
# a plain tar is refused, not guessed around.
COMPRESSION = {"tar": "", "tar.gz": "gzip", "venv": "gzip", "tar.bz2": "bzip2", "tar.xz": "xz"}


def compression(head: bytes) -> str:
    """The compression an archive's first bytes show: gzip, bzip2, xz, or "" (a plain tar)."""
    return next((name for magic, name in MAGIC if head.startswith(magic)), "")


_OPENERS: dict[str, Callable[[IO[bytes]], io.BufferedIOBase]] = {
    "bzip2": lambda fh: bz2.BZ2File(fh, mode="rb"),
    "xz": lambda fh: lzma.LZMAFile(fh, mode="rb", format=lzma.FORMAT_XZ),  # noqa: SIM115
}


class _Forward(io.RawIOBase):
    """A stream `tarfile` may seek, forward only (by reading): all a decompressor can do.

    `tarfile` in "r:" mode seeks to each header; bzip2 and xz readers refuse
    any seek on a source that cannot rewind, and so does our hashing reader.
    """

    def __init__(self, fh: io.BufferedIOBase) -> None:
        super().__init__()
        self.fh, self.pos = fh, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.fh.read(len(view))
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.pos + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.pos:
            raise OSError("this archive can only be read forwards")
        while self.pos < target and self.read(min(CHUNK, target - self.pos)):
            pass
        return self.pos


@contextmanager
def inflated(source: io.BufferedReader, fmt: str) -> Iterator[io.BufferedIOBase]:
    """`source` decompressed as the `fmt` artifact's magic bytes say (a plain tar as it is).

    Only the decompressor is closed on the way out: `parse` still reads the
    rest of `source` afterwards to hash the whole file.
    """
    kind = compression(source.peek(6)[:6])
    if kind != COMPRESSION[fmt]:
        held = f"{kind} data" if kind else "a plain tar"
        raise tarfile.ReadError(f"a {fmt} artifact holding {held}")
    if kind == "gzip":  # GzipFile seeks forward by itself
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            yield gz
        return
    if not kind:
        yield io.BufferedReader(_Forward(source), CHUNK)
        return
    with _OPENERS[kind](source) as opened:
        yield io.BufferedReader(_Forward(opened), CHUNK)
