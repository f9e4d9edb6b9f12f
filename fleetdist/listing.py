"""Read-only lists around a deploy: the releases each host keeps, the runs recorded here.

`releases` probes hosts exactly as `status` does (the read-only
`steps.probe`, parsed by `facts.parse_facts`), so it can never change a
host; `runs` reads the controller's run journals (`report.journal`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetdist.release import steps
from fleetdist.release.facts import Facts, parse_facts
from fleetdist.session import DeployOptions, Selection, jobs, load, run_on_each
from fleetdist.transport.base import Result


@dataclass(frozen=True)
class KeptRelease:
    """One release directory on one host, and what it is to that host."""

    id: str
    staged: str  # when it was staged there (UTC, ISO 8601)
    current: bool = False
    previous: bool = False
    tested: bool = False  # passed its in-place tests on this host: it may go live
    pending: bool = False  # a flip to it was made and never confirmed

    @property
    def marks(self) -> str:
        names = ("current", "previous", "tested", "pending")
        return ",".join(n for n in names if getattr(self, n))


@dataclass
class HostReleases:
    host: str
    reachable: bool = True
    error: str | None = None
    releases: list[KeptRelease] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def kept(facts: Facts) -> list[KeptRelease]:
    """The releases a host reported, newest first, each with its marks."""
    pending = facts.pending.to_release if facts.pending else None
    return [
        KeptRelease(
            rid,
            datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds"),
            current=rid == facts.current,
            previous=rid == facts.previous,
            tested=rid in facts.tested,
            pending=rid == pending,
        )
        for rid, epoch in facts.releases
    ]


def releases(sel: Selection, opts: DeployOptions) -> list[HostReleases]:
    """`fleetdist releases`: every selected host's kept releases, probed read-only."""
    loaded = load(sel)
    probe = lambda job: steps.probe(job.ctx.layout).text  # noqa: E731
    rows = []
    for job, result in run_on_each(sel, opts, jobs(sel, loaded, ""), probe):
        row = HostReleases(job.host.name)
        rows.append(row)
        if not isinstance(result, Result):
            row.reachable, row.error = False, str(result)
        elif not result.ok:
            row.error = result.tail()
        else:
            row.releases = kept(parse_facts(result.stdout))
    return rows
