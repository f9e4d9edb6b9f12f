"""Copy the selected source entries into a scratch directory, with normalised modes.

Builders that run tools (PyPA build, pip, containers) work on this copy, not
on the source: tools write `build/` and `*.egg-info` beside the sources, and
the copy holds exactly the files the recipe selected, with modes and mtimes
fixed so the tools see the same input on every machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleetdist.builders.archive import source_date_epoch
from fleetdist.builders.tree import Entry


def stage_entries(entries: list[Entry], dest: Path) -> None:
    """Recreate `entries` under `dest` (files 0644/0755, dirs 0755, mtime = SOURCE_DATE_EPOCH)."""
    epoch = source_date_epoch()
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = dest / entry.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.link is not None:
            target.symlink_to(entry.link)
            continue
        if entry.is_dir:
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(entry.path, target)
            target.chmod(0o755 if entry.executable else 0o644)
    for entry in reversed(entries):  # children first, so a dir's mtime is not bumped again
        target = dest / entry.rel
        if entry.link is None:
            if entry.is_dir:
                target.chmod(0o755)
            os.utime(target, (epoch, epoch))


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory removed whatever happens (even files a container left read-only)."""
    path = Path(tempfile.mkdtemp(prefix=f"fleetdist-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, onerror=_force)


def _force(func: object, path: str, exc: object) -> None:
    """rmtree fallback: make the parent writable and retry once."""
    try:
        os.chmod(os.path.dirname(path), 0o755)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
