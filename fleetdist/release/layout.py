"""Where an app's releases live on one host: pure paths, no I/O.

    <root>/releases/<release-id>/           one unpacked, tested release each
    <root>/current -> releases/<id>         relative link, flipped atomically
    <root>/.fleetdist/ledger.jsonl          one JSON line per action on this host
    <root>/.fleetdist/lock/                 the per-app lease (holder, run, expires)
    <root>/.fleetdist/previous              the release `current` last replaced
    <root>/.fleetdist/incoming/             artifacts while they are uploaded
    <root>/.fleetdist/staging/<id>/         a release while it is unpacked

A release directory appears under `releases/` only by a rename of a fully
unpacked staging directory that already holds its marker file, so a dropped
connection can never leave something a later run would take for staged.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

MARKER = ".fleetdist-release"


@dataclass(frozen=True)
class ReleaseLayout:
    """One app's root on one host.  Scripts address everything else relative to it
    ("$R/releases/...", see the tree above), so the root is quoted exactly once."""

    root: str

    def incoming(self, filename: str) -> str:
        """Where an uploaded artifact lands before it is verified."""
        return posixpath.join(self.root, ".fleetdist", "incoming", filename)


def host_root(deploy_root: str, local_root: str | None) -> str:
    """The app root as the transport sees it: under `local_root` for local hosts."""
    if not local_root:
        return posixpath.normpath(deploy_root)
    return posixpath.normpath(posixpath.join(local_root, deploy_root.lstrip("/")))
