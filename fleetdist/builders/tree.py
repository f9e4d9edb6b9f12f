"""The files of a recipe's source tree, selected by globs, in a stable order.

Globs are fnmatch patterns matched against the path relative to the source
directory, where `*` also crosses `/`; a pattern without `/` also matches the
file's base name (so `*.pyc` and `__pycache__` work at any depth), and a
leading `/` anchors a pattern at the source directory (`/dist` is the
top-level `dist` only, not `app/dist`).  Exclude wins over include.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fleetdist.config.schema import Source
from fleetdist.errors import ConfigError

_ALWAYS_EXCLUDED = (".git", "__pycache__", "*.pyc", ".fleetdist-release")


@dataclass(frozen=True)
class Entry:
    """One path in the tree: `rel` is POSIX and relative; `link` is set for symlinks."""

    rel: str
    path: Path
    is_dir: bool
    executable: bool
    link: str | None


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = PurePosixPath(rel).parts
    for pattern in patterns:
        if pattern.startswith("/"):
            if fnmatch.fnmatchcase(rel, pattern[1:]):
                return True
            continue
        if fnmatch.fnmatchcase(rel, pattern):
            return True
        if "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def walk(source: Source, where: str = "source.path") -> list[Entry]:
    """List the selected entries, sorted by relative path; a missing dir is a ConfigError.

    Every kind is read with `lstat` and nothing but regular files is ever
    opened: opening a FIFO would wait forever for a writer, so a selected
    special file is refused with its path instead.
    """
    root = source.path
    if not root.is_dir():
        raise ConfigError(f"{where}: {root} is not a directory")
    entries: list[Entry] = []
    excluded = source.exclude + _ALWAYS_EXCLUDED
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if _matches(rel, excluded):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            mode = path.lstat().st_mode
            is_dir = stat.S_ISDIR(mode)
            if not is_dir and not _matches(rel, source.include):
                continue
            link = os.readlink(path) if stat.S_ISLNK(mode) else None
            if not (is_dir or link is not None or stat.S_ISREG(mode)):
                raise ConfigError(
                    f"{where}: {path} is a {_kind(mode)}; only files, directories"
                    " and symlinks can be packaged (exclude it)"
                )
            executable = bool(mode & 0o111) and not is_dir
            entries.append(Entry(rel, path, is_dir, executable, link))
    entries.sort(key=lambda e: e.rel)
    return entries


def _kind(mode: int) -> str:
    """What a special file is, in words for an error message."""
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"))
    return next((name for test, name in kinds if test(mode)), "block device or other special file")


def tree_hash(entries: list[Entry]) -> str:
    """A digest of names, kinds, modes and contents: equal trees, equal hashes."""
    digest = hashlib.sha256()
    for entry in entries:
        kind = "l" if entry.link is not None else "d" if entry.is_dir else "f"
        digest.update(f"{kind} {int(entry.executable)} {entry.rel}\0".encode())
        if entry.link is not None:
            digest.update(entry.link.encode() + b"\0")
        elif not entry.is_dir:
            with entry.path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()
