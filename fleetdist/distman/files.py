"""How distman copies a source into a version, and compares two versions.

Files that are UTF-8 text get CRLF (and lone CR) turned into LF with the
source's mode kept; other files are copied with their metadata; symlinks
inside a directory stay symlinks.  Inside directories, ignorable names
(editor and VCS litter, every dot-file) are skipped unless `--all`.  Unlike
distman, a copy error is not swallowed: it stops the run before the link
moves.
"""

from __future__ import annotations

import filecmp
import fnmatch
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from fleetdist.config.distman import DistError

IGNORABLE = (
    "*~", ".git*", ".distman", ".venv", "*.bup", "*.bak", "*.orig", "*.lock", "*.swp",
    "*.temp*", "*.tmp", "venv*", "MANIFEST*", "__pycache__", "Thumbs.db", ".DS_Store",
    ".idea", ".vscode",
)  # fmt: skip
_IGNORABLE = re.compile("|".join(fnmatch.translate(p) for p in IGNORABLE))


def ignorable(name: str) -> bool:
    """distman's rule for one path component: a dot-name or one of `IGNORABLE`."""
    return name.startswith(".") or bool(_IGNORABLE.match(name))


def walk(root: Path, *, all_files: bool) -> Iterator[Path]:
    """Files and symlinks below `root` that a dist copies (links to dirs are not entered)."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        keep = []
        for d in sorted(dirs):
            if not all_files and ignorable(d):
                continue
            if (here / d).is_symlink():
                yield here / d
            else:
                keep.append(d)
        dirs[:] = keep
        for f in sorted(files):
            if all_files or not ignorable(f):
                yield here / f


def copy_file(src: Path, dst: Path) -> None:
    """One file or symlink, as distman writes it (text normalised to LF)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    if not src.is_file():  # read as a file, a fifo blocks and /dev/zero never ends
        raise DistError(f"{src}: a {_kind(src)}: dist copies only files, folders and links")
    data = src.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        shutil.copy2(src, dst)
        return
    dst.write_bytes(text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8"))
    os.chmod(dst, src.stat().st_mode & 0o7777)


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "socket" if stat.S_ISSOCK(mode) else "device or special file"


def copy_source(src: Path, dst: Path, *, all_files: bool) -> None:
    """A file or a directory tree into `dst` (which must not exist yet)."""
    if src.is_dir():
        dst.mkdir(parents=True)
        for path in walk(src, all_files=all_files):
            copy_file(path, dst / path.relative_to(src))
    else:
        copy_file(src.resolve() if src.is_symlink() else src, dst)


def same_tree(a: Path, b: Path) -> bool:
    """Equal content, modes and link targets: `match: content` uses this on two versions."""
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    if a.is_file() and b.is_file():
        same_mode = (a.stat().st_mode & 0o7777) == (b.stat().st_mode & 0o7777)
        return same_mode and filecmp.cmp(a, b, shallow=False)
    if not (a.is_dir() and b.is_dir()):
        return False
    names_a = sorted(p.relative_to(a) for p in walk(a, all_files=True))
    names_b = sorted(p.relative_to(b) for p in walk(b, all_files=True))
    return names_a == names_b and all(same_tree(a / n, b / n) for n in names_a)
