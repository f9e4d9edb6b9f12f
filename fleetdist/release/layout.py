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
    root: str

    @property
    def releases(self) -> str:
        return posixpath.join(self.root, "releases")

    def release(self, release_id: str) -> str:
        return posixpath.join(self.releases, release_id)

    @property
    def current(self) -> str:
        return posixpath.join(self.root, "current")

    @property
    def state(self) -> str:
        return posixpath.join(self.root, ".fleetdist")

    @property
    def ledger(self) -> str:
        return posixpath.join(self.state, "ledger.jsonl")

    @property
    def lock(self) -> str:
        return posixpath.join(self.state, "lock")

    @property
    def previous(self) -> str:
        return posixpath.join(self.state, "previous")

    def incoming(self, filename: str) -> str:
        return posixpath.join(self.state, "incoming", filename)

    def staging(self, release_id: str) -> str:
        return posixpath.join(self.state, "staging", release_id)


def host_root(deploy_root: str, local_root: str | None) -> str:
    """The app root as the transport sees it: under `local_root` for local hosts."""
    if not local_root:
        return posixpath.normpath(deploy_root)
    return posixpath.normpath(posixpath.join(local_root, deploy_root.lstrip("/")))
