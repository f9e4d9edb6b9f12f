"""Where an app's releases live on one host: pure paths, no I/O.

    <root>/releases/<release-id>/           one unpacked release each
    <root>/current -> releases/<id>         relative link, flipped atomically
    <root>/shared/                          the recipe's `shared:` paths, kept across releases
    <root>/.fleetdist/ledger.jsonl          one JSON line per action on this host
    <root>/.fleetdist/lock/                 the per-app lease (run, holder, expires)
    <root>/.fleetdist/mutex                 flock(1) file: held by every fleetdist script
                                            for its whole life
    <root>/.fleetdist/previous              the release `current` last replaced
    <root>/.fleetdist/pending               a flip made but not yet confirmed
    <root>/.fleetdist/tested/<id>           the release passed its tests on this host
    <root>/.fleetdist/incoming/             artifacts while they are uploaded
    <root>/.fleetdist/staging/<id>.<run>/   a release while it is unpacked

A release directory appears under `releases/` only by a rename of a fully
unpacked staging directory that already holds its marker file, so a dropped
connection can never leave something a later run would take for staged.
Everything fleetdist writes about a release lives outside it (under
`.fleetdist/`), except the marker, so the app's own in-place tests cannot
vouch for themselves.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

MARKER = ".fleetdist-release"


@dataclass(frozen=True)
class ReleaseLayout:
    """One app's root on one host, and every path under it.

    Scripts get these as shell variables (`variables`), assigned once, so a
    path is quoted in exactly one place and spelled in exactly one place.
    """

    root: str

    def incoming(self, filename: str) -> str:
        """Where an uploaded artifact lands before it is verified."""
        return posixpath.join(self.root, ".fleetdist", "incoming", filename)

    def variables(self) -> list[tuple[str, str]]:
        """(shell variable, path) for every path the host scripts use."""
        meta = posixpath.join(self.root, ".fleetdist")
        return [
            ("R", self.root),
            ("REL", posixpath.join(self.root, "releases")),
            ("CUR", posixpath.join(self.root, "current")),
            ("FD", meta),
            ("LEDGER", posixpath.join(meta, "ledger.jsonl")),
            ("LOCK", posixpath.join(meta, "lock")),
            ("MUTEX", posixpath.join(meta, "mutex")),
            ("PREVF", posixpath.join(meta, "previous")),
            ("PENDING", posixpath.join(meta, "pending")),
            ("TESTED", posixpath.join(meta, "tested")),
            ("INCOMING", posixpath.join(meta, "incoming")),
            ("STAGING", posixpath.join(meta, "staging")),
            ("SHARED", posixpath.join(self.root, "shared")),
            ("MARKER", MARKER),
        ]


def host_root(deploy_root: str, local_root: str | None) -> str:
    """The app root as the transport sees it: under `local_root` for local hosts."""
    if not local_root:
        return posixpath.normpath(deploy_root)
    return posixpath.normpath(posixpath.join(local_root, deploy_root.lstrip("/")))
