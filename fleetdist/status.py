"""Read-only views of the fleet: what each host runs (`status`) and what ran there (`history`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetdist.release import steps
from fleetdist.session import DeployOptions, Selection, jobs, load, look_on_each, merged_ledgers


@dataclass
class HostStatus:
    host: str
    app: str
    groups: list[str]
    current: str | None = None
    previous: str | None = None
    releases: list[str] = field(default_factory=list)
    lock: str | None = None
    reachable: bool = True
    error: str | None = None
    drift: bool = False


def status(sel: Selection, opts: DeployOptions) -> list[HostStatus]:
    """Probe every host read-only; flag drift inside each group."""
    loaded = load(sel)
    probe = lambda job: steps.probe(job.ctx.layout)  # noqa: E731
    rows = []
    for seen in look_on_each(sel, opts, jobs(sel, loaded, ""), probe):
        host = seen.job.host
        row = HostStatus(host.name, loaded.recipe.app, list(host.groups))
        row.reachable, row.error = seen.reachable, seen.error
        rows.append(row)
        if seen.stdout is not None:
            facts = steps.parse_facts(seen.stdout)
            row.current, row.previous, row.lock = facts.current, facts.previous, facts.lock
            row.releases = facts.release_ids
    _flag_drift(rows)
    return rows


def _flag_drift(rows: list[HostStatus]) -> None:
    by_group: dict[str, set[str | None]] = {}
    for row in rows:
        for group in row.groups or ["(ungrouped)"]:
            by_group.setdefault(group, set()).add(row.current if row.reachable else "?")
    for row in rows:
        groups = row.groups or ["(ungrouped)"]
        row.drift = not row.reachable or any(len(by_group[g]) > 1 for g in groups)


def history(sel: Selection, opts: DeployOptions) -> list[dict[str, Any]]:
    """Every host's ledger, merged and sorted by time; an unreachable host is an error."""
    loaded = load(sel)
    read = lambda job: steps.read_ledger(job.ctx.layout)  # noqa: E731
    return merged_ledgers(sel, opts, jobs(sel, loaded, ""), read)
