"""The few writes a dist makes, each one atomic: version rename, link flip, info, epoch.

A reader (a cache, a running program, another dist) sees the old state or
the new one, never a half: a version appears by renaming a complete copy, a
link moves by renaming a new link over it (rename(2), as the release
engine's `flip`), info and epoch files are replaced whole.  `locked` holds
flock(2) on each destination folder, so concurrent runs take turns.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fleetdist.release.distlayout import DistLayout, epoch_path


@contextmanager
def locked(folders: Iterable[str]) -> Iterator[None]:
    """Hold an exclusive flock on every folder (sorted: two runs cannot deadlock)."""
    with ExitStack() as stack:
        for folder in sorted(set(folders)):
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield


def flip(layout: DistLayout, filename: str) -> None:
    """Point the destination at versions/<filename> by one rename over the old link."""
    tmp = os.path.join(layout.folder, f".{layout.name}.link.{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(layout.link_text(filename), tmp)
    os.replace(tmp, layout.dest)


def _replace_text(path: str, text: str, mode: int | None) -> None:
    """Write `path` whole through a temporary file in its folder, then rename it."""
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is None:  # as open(path, "w") would create it: 0666 less the umask
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def info_text(fields: Mapping[str, str]) -> str:
    """distman's `.NAME.dist` format: one `key: value` line per field, in order."""
    return "".join(f"{key}: {value}\n" for key, value in fields.items())


def write_info(layout: DistLayout, fields: Mapping[str, str]) -> bool:
    """Rewrite `.NAME.dist` if it would change; True when it did."""
    text = info_text(fields)
    try:
        if Path(layout.info).read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    _replace_text(layout.info, text, None)
    return True


def read_info(layout: DistLayout) -> dict[str, str]:
    try:
        lines = Path(layout.info).read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def bump_epoch(deploy_root: str) -> None:
    """`DEPLOY_ROOT/.distman/epoch` := time_ns, mode 600: caches notice every change."""
    path = epoch_path(deploy_root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _replace_text(path, f"{time.time_ns()}\n", 0o600)
