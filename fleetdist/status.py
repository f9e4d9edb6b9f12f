"""Read-only views of the fleet: what each host runs (`status`) and what ran there (`history`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetdist.release import steps
from fleetdist.report import ledger
from fleetdist.session import DeployOptions, Selection, jobs, load, run_on_each
from fleetdist.transport.base import Result


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
    for job, result in run_on_each(sel, opts, jobs(sel, loaded, ""), probe):
        row = HostStatus(job.host.name, loaded.recipe.app, list(job.host.groups))
        rows.append(row)
        if not isinstance(result, Result):
            row.reachable, row.error = False, str(result)
        elif not result.ok:
            row.error = result.tail()
        else:
            facts = steps.parse_facts(result.stdout)
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
    merged: list[dict[str, Any]] = []
    for job, result in run_on_each(sel, opts, jobs(sel, loaded, ""), read):
        if not isinstance(result, Result):
            raise result
        merged += [{"host": job.host.name, **entry} for entry in ledger.parse(result.stdout)]
    return sorted(merged, key=lambda e: (str(e.get("time", "")), e["host"]))
