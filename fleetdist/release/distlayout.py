"""Where distman keeps a target's versions: pure paths and names, no I/O.

    <dir>/<name>                     relative link -> versions/<name>.<N>.<commit7>
    <dir>/.<name>.dist               text info about the linked version
    <dir>/versions/<name>.<N>[.<commit7>[-dirty]]
    <dir>/versions/.<name>.tmp.*     a version while it is copied (never listed)
    <dir>/                           flock(2) on the directory itself serialises runs
    <DEPLOY_ROOT>/.distman/epoch     time_ns of the last change, read by caches

This is distman 0.8.4's tree, kept byte for byte so a team can switch tools
without touching a deploy root.  The second layout beside `ReleaseLayout`:
the same idea (immutable copies, one link flipped by rename) with distman's
names.  Version names are parsed with one exact grammar, so targets
`python3` and `python3.11` in one folder never read each other's versions.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

VERSIONS = "versions"
INFO_EXT = ".dist"
META_DIR = ".distman"
EPOCH = "epoch"
DIRTY = "-dirty"
_VERSION_TAIL = re.compile(r"\.(\d+)(?:\.([0-9a-f]{4,40})(-dirty)?)?")


@dataclass(frozen=True, order=True)
class Version:
    """One materialised version of a target: `<name>.<number>[.<commit>[-dirty]]`."""

    number: int
    commit: str
    dirty: bool
    filename: str


@dataclass(frozen=True)
class DistLayout:
    """One target's destination (`dest`, an absolute path) and every path beside it."""

    dest: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.dest)

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.dest)

    @property
    def versions(self) -> str:
        return posixpath.join(self.folder, VERSIONS)

    @property
    def info(self) -> str:
        """The hidden `.<name>.dist` file distman writes beside the link."""
        return posixpath.join(self.folder, f".{self.name}{INFO_EXT}")

    def version_name(self, number: int, commit: str, dirty: bool = False) -> str:
        """`<name>.<N>.<commit>` (`<name>.<N>` outside git); `-dirty` marks forced work trees."""
        name = f"{self.name}.{number}"
        if commit:
            name += f".{commit}" + (DIRTY if dirty else "")
        return name

    def version_path(self, filename: str) -> str:
        return posixpath.join(self.versions, filename)

    def link_text(self, filename: str) -> str:
        """What the destination link holds: relative, so the tree can move or be cached."""
        return posixpath.join(VERSIONS, filename)

    def parse(self, filename: str) -> Version | None:
        """The version `filename` names for THIS target, or None (exact: no prefix guessing)."""
        if not filename.startswith(self.name):
            return None
        match = _VERSION_TAIL.fullmatch(filename[len(self.name) :])
        if match is None:
            return None
        return Version(int(match[1]), match[2] or "", bool(match[3]), filename)

    def variables(self) -> list[tuple[str, str]]:
        """(shell variable, path) for host scripts, as `ReleaseLayout.variables` gives them."""
        return [
            ("DEST", self.dest),
            ("DDIR", self.folder),
            ("VERS", self.versions),
            ("INFO", self.info),
        ]


def epoch_path(deploy_root: str) -> str:
    """`DEPLOY_ROOT/.distman/epoch`: caches compare it to decide whether to copy."""
    return posixpath.join(deploy_root, META_DIR, EPOCH)
