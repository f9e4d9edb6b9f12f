"""Refuse archives that would write outside their release directory.

Checked on the controller before any host is touched; the host then verifies
the sha256 of what it received, so it unpacks exactly the bytes checked here.
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path

from fleetdist.errors import ArtifactError


def _escapes(path: str) -> bool:
    norm = posixpath.normpath(path)
    return path.startswith("/") or norm == ".." or norm.startswith("../")


def check_tar(path: Path, shown: Path | None = None) -> None:
    """Raise ArtifactError naming the first member that is absolute, climbs out, or is special.

    Messages name `shown` (the artifact) when `path` is a copy of it, such as
    the plain tar `payload.shipped` sends instead of a tar.gz.
    """
    at = shown or path
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member.name
                if _escapes(name) or ".." in name.split("/"):
                    raise ArtifactError(f"{at}: member {name!r} would unpack outside the release")
                if member.issym():
                    target = posixpath.join(posixpath.dirname(name), member.linkname)
                    if member.linkname.startswith("/") or _escapes(target):
                        raise ArtifactError(
                            f"{at}: symlink {name!r} -> {member.linkname!r} escapes the release"
                        )
                elif member.islnk():
                    if _escapes(member.linkname) or ".." in member.linkname.split("/"):
                        raise ArtifactError(
                            f"{at}: hard link {name!r} -> {member.linkname!r} escapes the release"
                        )
                elif not (member.isfile() or member.isdir()):
                    raise ArtifactError(
                        f"{at}: member {name!r} is a device, fifo or other special file"
                    )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{at}: not a readable tar archive ({exc})") from None
