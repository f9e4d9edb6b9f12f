"""Spot leases whose holder is provably dead, so a crashed run does not block for minutes.

A lease names its holder as `user@controller pid=N run=ID`, but neither the
host name nor the pid proves anything: another machine may share the name,
and a controller in another PID namespace has pids this one cannot see.
What does prove it: every run holds an flock(2) on its own journal
(`<project>/.fleetdist/runs/<run>.jsonl`, see `report.journal.Journal`) for
as long as its controller lives, and the kernel drops that lock when the
process dies, whatever namespace it was in.  So a run is dead when its
journal is here and nobody holds that lock; any other holder (a run of
another project or machine) is respected until its lease expires.
"""

from __future__ import annotations

import re
from pathlib import Path

from fleetdist.report.journal import run_is_dead

_HOLDER = re.compile(r"locked by \S+ pid=\d+ run=(?P<run>[A-Za-z0-9._-]+)(?:\s|$)")


def stale_run(message: str, runs: Path) -> str | None:
    """The run id in a host's "locked by" `message`, if that run is provably dead."""
    match = _HOLDER.search(message)
    if not match or "still running here" in message:
        return None
    return match["run"] if run_is_dead(runs, match["run"]) else None
