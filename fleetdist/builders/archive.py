"""Reproducible tar (gzip, bzip2, xz) and zip archives of a source tree.

Same tree, same bytes: entries are sorted, owners are 0/root, modes are
normalised to 0644/0755, every mtime is SOURCE_DATE_EPOCH (default
1980-01-01, the earliest a zip can hold), and the gzip header carries no
name and no timestamp (bzip2 and xz streams hold none).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from fleetdist.builders.tree import Entry

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return max(int(value), DEFAULT_EPOCH) if value.isdigit() else DEFAULT_EPOCH


def _tarinfo(entry: Entry, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.rel)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
    elif entry.is_dir:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size = entry.path.stat().st_size
        info.mode = 0o755 if entry.executable else 0o644
    return info


# Format -> a writer compressing into a file object; none embeds a name or a time.
COMPRESSORS: dict[str, Callable[[IO[bytes]], io.BufferedIOBase]] = {
    "tar.gz": lambda raw: gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
    ),
    "tar.bz2": lambda raw: bz2.BZ2File(raw, mode="wb", compresslevel=9),
    "tar.xz": lambda raw: lzma.LZMAFile(  # noqa: SIM115
        raw, mode="wb", format=lzma.FORMAT_XZ, preset=6
    ),
}


def write_tar_gz(entries: list[Entry], dest: Path, *, prefix: str = "") -> None:
    """`write_tar` in gzip: the venv bundle's format."""
    write_tar(entries, dest, "tar.gz", prefix=prefix)


def write_tar(entries: list[Entry], dest: Path, fmt: str, *, prefix: str = "") -> None:
    """Write `dest` atomically (via a temp name), so a crash never leaves half a file."""
    mtime = source_date_epoch()
    tmp = dest.with_name(dest.name + ".tmp")
    with (
        tmp.open("wb") as raw,
        COMPRESSORS[fmt](raw) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for entry in entries:
            info = _tarinfo(entry, mtime)
            info.name = prefix + info.name
            if info.isreg():
                with entry.path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    tmp.replace(dest)


def write_zip(entries: list[Entry], dest: Path) -> None:
    """A reproducible zip; symlinks are stored as links (unix mode bits), like Info-ZIP -y."""
    import time

    stamp = time.gmtime(source_date_epoch())[:6]
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for entry in entries:
            name = entry.rel + ("/" if entry.is_dir else "")
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            if entry.link is not None:
                info.external_attr = 0o120777 << 16
                zf.writestr(info, entry.link)
            elif entry.is_dir:
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
            else:
                info.external_attr = (0o100755 if entry.executable else 0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as out, entry.path.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        out.write(chunk)
    tmp.replace(dest)
