"""The per-app lease on a host: who holds it, for how long, and its exit code.

The shell that takes, renews, gives back and breaks it is `sh/lease.sh`: a
flock(1) mutex every fleetdist script holds for its whole life, around a
lease record (`<root>/.fleetdist/lock/`: run, holder, expires) that names the
rollout owning the app between its scripts.  A lease is taken over only once
it has expired, or when the controller proved its run dead (`takeover`, see
`orchestrate.stale`); never while a script of that run still runs there.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdist.release.command import Sh, assign

LOCK_HELD = 75
LEASE_SECONDS = 900  # longer than any single step; each step renews it


@dataclass(frozen=True)
class LockSpec:
    """Who asks for the per-app lease on a host, and for which rollout."""

    run_id: str
    holder: str
    lease: int = LEASE_SECONDS
    wait: float = 0.0
    takeover: str = ""  # a run id the controller proved dead (orchestrate.stale)


def variables(spec: LockSpec) -> list[Sh]:
    """The values `sh/lease.sh` reads."""
    return [
        assign("RUN", spec.run_id),
        assign("HOLDER", spec.holder),
        assign("LEASE", str(spec.lease)),
        assign("WAIT", str(int(spec.wait))),
        assign("TAKEOVER", spec.takeover),
    ]
