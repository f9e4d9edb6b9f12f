"""Parse an archive artifact once, and re-serialise exactly what passed the checks.

Two tar parsers never agree on every header: Python's `tarfile` prepends a
ustar prefix field that GNU tar ignores in GNU and V7 headers, and keeps the
last of a pax `GNU.sparse.name` and `path` where GNU tar keeps the first.
So hosts never see an artifact's own bytes.  `parse` reads it once with
`tarfile`, runs each member through `shipping.safety`, and copies file data
into a spool; `write` then emits a new tar of exactly those members in a
fixed order (directories, files, symlinks, hard links; by name), owner 0/0
with no names, normalised modes and integer mtimes.  That canonical tar
holds nothing a second parser could read differently, and it is what
travels and what a host's sha256 check covers (see `shipping.payload`).

Bounds are checked from the headers, before any data is inflated, so a
gzip bomb or a header claiming terabytes is refused without unpacking it.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar, Protocol, Self

from fleetdist.errors import ArtifactError
from fleetdist.shipping.artifact import CHUNK
from fleetdist.shipping.compression import inflated
from fleetdist.shipping.safety import DIR, FILE, HARDLINK, SYMLINK, Member, Tree, UnsafeMember
from fleetdist.shipping.safety import member_of as check_member

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

VERSION = 1  # part of every cached payload's name: bump when `write`'s output changes
MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 8 << 30
MAX_TOTAL_BYTES = 16 << 30
MAX_EXTENDED_BYTES = 1 << 20  # one pax or GNU long-name header; tarfile reads it into memory
MAX_EXTENDED_RUN = 8  # extended headers in a row; tarfile recurses once per header

POSIX_MAGIC = b"ustar\x00"
EXTENDED = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
TYPES = {
    DIR: tarfile.DIRTYPE,
    FILE: tarfile.REGTYPE,
    SYMLINK: tarfile.SYMTYPE,
    HARDLINK: tarfile.LNKTYPE,
}


class _Writable(Protocol):
    def write(self, data: ReadableBuffer, /) -> object: ...


class Sink(io.RawIOBase):
    """Bytes on their way to some files (or none): counted and hashed as they pass."""

    def __init__(self, *targets: _Writable) -> None:
        super().__init__()
        self.targets, self.digest, self.size = targets, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.size += view.nbytes
        for target in self.targets:
            target.write(view)
        return view.nbytes


class Spool:
    """File data between `parse` and `write`, in a nameless temporary file.

    A failed write (a full disk) is kept in `error` rather than raised, so
    `parse` still reads on and refuses a bad archive by its own name first.
    """

    def __init__(self, directory: Path | None) -> None:
        self.error: OSError | None = None
        self.fh: IO[bytes] | None = None
        self.size = 0
        try:  # nameless on Linux (O_TMPFILE): a killed run leaves nothing behind
            self.fh = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 closed by close()
        except OSError as exc:
            self.error = exc

    def copy(self, src: IO[bytes], size: int) -> int:
        """Append `size` bytes of `src`; return where they start."""
        start = self.size
        self.size += size
        while self.error is None and self.fh is not None and size > 0:
            chunk = src.read(min(CHUNK, size))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data")
            size -= len(chunk)
            try:
                self.fh.write(chunk)
            except OSError as exc:
                self.error = exc
        return start

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        if self.fh is not None:
            self.fh.close()


class _Digesting(io.RawIOBase):
    """The artifact's bytes as they are read, hashed once: what is parsed is what was hashed."""

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__()
        self.fh, self.digest = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.fh.read(len(view))
        view[: len(data)] = data
        self.digest.update(data)
        return len(data)

    def drain(self) -> str:
        """The sha256 of the whole file, reading what the parser left."""
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


@dataclass
class _Scan:
    """What the header hook saw of one archive."""

    run: int = 0  # extended headers in a row
    bad: str = ""  # why tarfile stopped early, when it did


class _Header(tarfile.TarInfo):
    """tarfile's header parser, plus the checks that need the raw 512-byte block."""

    scan: ClassVar[_Scan]

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            if buf.count(0) != len(buf):  # neither end of file nor the zero end block
                cls.scan.bad = str(exc)  # which tarfile would take for the end of the archive
            raise
        _check_block(info, bytes(buf), cls.scan)
        return info


def _check_block(info: tarfile.TarInfo, buf: bytes, scan: _Scan) -> None:
    """Refuse a header tar implementations read differently, or one claiming too much."""
    prefix = buf[345:500].split(b"\0", 1)[0]
    if prefix and buf[257:263] != POSIX_MAGIC and info.type not in tarfile.GNU_TYPES:
        raise UnsafeMember(
            f"member {info.name!r} has a ustar prefix in a GNU or V7 header "
            "(tar implementations disagree on its name)"
        )
    if info.size < 0 or info.size > MAX_MEMBER_BYTES:
        raise UnsafeMember(f"member {info.name!r} claims {info.size} bytes")
    if info.type not in EXTENDED:
        scan.run = 0
        return
    scan.run += 1
    if scan.run > MAX_EXTENDED_RUN or info.size > MAX_EXTENDED_BYTES:
        raise UnsafeMember(f"member {info.name!r}: oversized or endless extended headers")


def _check_pax(info: tarfile.TarInfo) -> None:
    sparse = sorted(k for k in info.pax_headers if k.startswith("GNU.sparse."))
    if sparse:
        raise UnsafeMember(
            f"member {info.name!r} has pax record {sparse[0]!r} "
            "(tar implementations disagree on it)"
        )


def parse(path: Path, sha256: str, spool: Spool, fmt: str = "tar.gz") -> list[Member]:
    """The validated members of the tar at `path` (plain, gzip, bzip2 or xz), data into `spool`.

    Raises ArtifactError naming `path` (and the member) for anything the
    rules refuse, for an unreadable archive, and when the file's bytes no
    longer have the `sha256` it was loaded with.
    """
    scan = _Scan()
    header = type("Header", (_Header,), {"scan": scan})
    try:
        with path.open("rb") as raw:
            source = _Digesting(raw)
            with (
                inflated(io.BufferedReader(source, CHUNK), fmt) as stream,
                tarfile.open(fileobj=stream, mode="r:", tarinfo=header, encoding="utf-8") as tar,
            ):
                members = _read(tar, spool)
                if scan.bad:
                    last = f"member {members[-1].name!r}" if members else "the first member"
                    raise UnsafeMember(f"unreadable header after {last} ({scan.bad})")
            seen = source.drain()
        members = _finish(members)
    except UnsafeMember as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArtifactError(f"{path}: not a readable tar archive ({exc})") from None
    if seen != sha256:
        raise ArtifactError(f"{path}: changed while it was being read (sha256 {seen[:12]}...)")
    return members


SINGLE_MTIME = 315532800  # 1980-01-01, as the builders' default SOURCE_DATE_EPOCH


def single(path: Path, sha256: str, spool: Spool, name: str) -> list[Member]:
    """A release of one executable file (a PEX) named `name`: the member `write` packs.

    Raises ArtifactError naming `path` when its bytes are no longer those
    it was loaded with, or it is larger than one member may be.
    """
    size = path.stat().st_size
    if size > MAX_MEMBER_BYTES:
        raise ArtifactError(f"{path}: {size} bytes, more than {MAX_MEMBER_BYTES} in one file")
    with path.open("rb") as raw:
        source = _Digesting(raw)
        offset = spool.copy(source, size)  # type: ignore[arg-type]
        seen = source.drain()
    if seen != sha256:
        raise ArtifactError(f"{path}: changed while it was being read (sha256 {seen[:12]}...)")
    return [Member(name, FILE, 0o755, SINGLE_MTIME, size, offset=offset)]


def _read(tar: tarfile.TarFile, spool: Spool) -> list[Member]:
    """Check each header as it comes; copy file data only once the bounds allow it."""
    out: list[Member] = []
    total = 0
    for count, info in enumerate(tar, 1):
        if count > MAX_MEMBERS:
            raise UnsafeMember(f"more than {MAX_MEMBERS} members")
        _check_pax(info)
        member = check_member(info)
        if member.kind == FILE:
            total += member.size
            if total > MAX_TOTAL_BYTES:
                too_much = f"more than {MAX_TOTAL_BYTES} bytes in all"
                raise UnsafeMember(f"member {member.name!r}: {too_much}")
            data = tar.extractfile(info)
            assert data is not None  # a regular file always has data
            member = replace(member, offset=spool.copy(data, member.size))
        out.append(member)
    return out


def _finish(members: list[Member]) -> list[Member]:
    tree = Tree()
    for member in members:
        tree.add(member)
    return tree.finish()


def write(members: list[Member], spool: Spool, out: Sink) -> None:
    """Write the canonical tar of `members` (from `parse`) to `out`: a pax tar, GNU-readable."""
    assert spool.fh is not None and spool.error is None
    with (
        io.BufferedWriter(out, CHUNK) as buffered,
        tarfile.open(
            fileobj=buffered, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8"
        ) as tar,
    ):
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = TYPES[member.kind]
            info.mode, info.mtime, info.linkname = member.mode, member.mtime, member.link
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.kind == FILE:
                info.size = member.size
                spool.fh.seek(member.offset)
                tar.addfile(info, spool.fh)
            else:
                tar.addfile(info)
