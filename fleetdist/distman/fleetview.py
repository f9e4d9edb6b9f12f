"""`fleetdist status --dist` and `history --dist`: a dist.json's targets on each host.

Read-only, like `status`: one script per host (`diststeps.look`) prints each
target's link and versions through the name grammar, and `history` reads
the ledger the dist scripts append (under `DEPLOY_ROOT/.fleetdist/dist`).
Each host's targets are resolved as `dist --hosts` resolves them (its
DEPLOY_ROOT from its inventory vars), so what is shown is where a dist goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.config.distman import FILENAME, read_dist_file
from fleetdist.distman import env, hostplan
from fleetdist.distman.targets import Request, plan_targets
from fleetdist.orchestrate.work import HostJob
from fleetdist.release import distfacts, diststeps, steps
from fleetdist.session import DeployOptions, look_on_each, merged_ledgers

APP = "dist"


@dataclass
class DistStatus:
    """One host's targets: `targets` holds `target`, `link`, `version` (None: no link,
    "?" a link elsewhere), `versions` (how many the host keeps)."""

    host: str
    deploy_root: str
    reachable: bool = True
    error: str | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)


def _jobs(
    location: Path, fleet: hostplan.FleetArgs
) -> tuple[hostplan.Selected, dict[str, hostplan.HostPlan], list[HostJob]]:
    dist_file = read_dist_file(location / FILENAME)
    request = Request(str(location), None, None, None, True)
    planned = plan_targets(
        dist_file, request, hostplan.HostsKnow(env.lookup(location)), lambda _: None
    )
    chosen = hostplan.select(fleet)
    plans = hostplan.plans(dist_file, request, planned, chosen, location)
    jobs = [
        HostJob(h, steps.Context(diststeps.state_layout(plans[h.name].root), APP, "", host=h.name))
        for h in chosen.hosts
    ]
    return chosen, plans, jobs


def status(location: Path, fleet: hostplan.FleetArgs, opts: DeployOptions) -> list[DistStatus]:
    """Probe every host read-only for each target's link and versions."""
    chosen, plans, jobs = _jobs(location, fleet)

    def look(job: HostJob) -> steps.Step:
        plan = plans[job.host.name]
        return diststeps.look(plan.root, plan.targets)

    rows = []
    for seen in look_on_each(chosen.sel, opts, jobs, look):
        plan = plans[seen.job.host.name]
        row = DistStatus(seen.job.host.name, plan.root, seen.reachable, seen.error)
        rows.append(row)
        if seen.stdout is not None:
            facts = distfacts.parse_facts(seen.stdout, len(plan.targets))
            for t, f in zip(plan.targets, facts, strict=True):
                version = "?" if f.elsewhere or f.blocked else f.linked
                row.targets.append(
                    {
                        "target": t.name,
                        "link": t.dest,
                        "version": version,
                        "versions": len(f.versions),
                    }
                )
    return rows


def history(location: Path, fleet: hostplan.FleetArgs, opts: DeployOptions) -> list[dict[str, Any]]:
    """Every host's dist ledger, merged and sorted by time; an unreachable host is an error."""
    chosen, plans, jobs = _jobs(location, fleet)
    read = lambda job: diststeps.read_ledger(plans[job.host.name].root)  # noqa: E731
    return merged_ledgers(chosen.sel, opts, jobs, read)
