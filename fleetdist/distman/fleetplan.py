"""`fleetdist dist -d --hosts`: the scripts a run would send each host; nothing is written.

Built by the functions a run uses (`fleet.prepare`, the same `decide`,
`diststeps.probe`/`stage`/`switch`) after the same checks, from each host's
facts read with the read-only `look` script `status --dist` uses (an
unreachable host is planned as an empty one, and says so).  The pipeline
does not run, so the payload's digest is shown as unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetdist.distman import fleet, hostplan
from fleetdist.distman.api import DistArgs
from fleetdist.errors import FleetdistError
from fleetdist.orchestrate import plan
from fleetdist.orchestrate.distrun import DistJob
from fleetdist.orchestrate.work import HostJob, RolloutOptions
from fleetdist.release import distfacts, diststeps, steps
from fleetdist.release.distfacts import TargetFacts
from fleetdist.report import ledger
from fleetdist.session import lock_spec, look_on_each

DRY_RUN = "DRY-RUN"
UNKNOWN = "<sha256 known once the pipeline ran>"


def plan_hosts(args: DistArgs, hosts: hostplan.FleetArgs) -> list[dict[str, Any]]:
    """Per host: its root, how its facts were read, each target's version, the scripts."""
    ready = fleet.prepare(args, hosts)
    jobs = fleet.dist_jobs(ready.hosts, ready.per_host, DRY_RUN)
    options = RolloutOptions(
        lock=lock_spec(DRY_RUN, hosts.options.lock_wait),
        parallel=hosts.options.parallel,
        operator=ledger.operator(),
    )
    by_name = {j.host.name: j for j in jobs}

    def look(job: HostJob) -> steps.Step:
        mine = by_name[job.host.name]
        return diststeps.look(mine.deploy_root, mine.targets)

    out = []
    for seen in look_on_each(ready.hosts.sel, hosts.options, jobs, look):
        mine = by_name[seen.job.host.name]
        if seen.stdout is not None:
            facts, note = distfacts.parse_facts(seen.stdout, len(mine.targets)), "probed"
        else:
            facts = [TargetFacts() for _ in mine.targets]
            note = f"unknown ({seen.error}): planned as an empty host"
        out.append(_host(mine, facts, note, ready, options))
    return out


def _host(
    job: DistJob,
    facts: list[TargetFacts],
    note: str,
    ready: fleet.Prepared,
    options: RolloutOptions,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"host": job.host.name, "root": job.deploy_root, "facts": note}
    try:
        chosen = ready.decide(job, facts)
    except FleetdistError as exc:
        return {**entry, "error": str(exc), "targets": [], "steps": []}
    action = "dist-move" if ready.moving else "dist"
    ledgers = plan.host_ledgers(job, options, DRY_RUN, action)
    probe = diststeps.probe(job.deploy_root, job.targets, options.lock, ledgers)
    planned = [probe]
    if not ready.moving:
        upload = None
        if any(p.slot is not None for p in chosen):
            source = Path("<the pipeline's result>")
            what = "the canonical tar of the pipeline's result, one slot per target"
            upload = steps.Upload.of(job.ctx, UNKNOWN, "tar", "", source=source, note=what)
        planned.append(
            diststeps.stage(
                job.deploy_root, job.host.name, DRY_RUN, options.lock, chosen, job.tests, upload
            )
        )
    planned.append(
        diststeps.switch(
            job.deploy_root, DRY_RUN, options.lock, chosen, ledgers, untested_ok=ready.moving
        )
    )
    targets = [
        {
            "target": p.target.name,
            "link": p.target.dest,
            "version": p.filename,
            "make": p.slot is not None,
        }
        for p in chosen
    ]
    steps_shown = [{"name": st.name, "script": st.for_host(job.host).render()} for st in planned]
    return {**entry, "error": None, "targets": targets, "steps": steps_shown}
