"""The one core the `fleetdist`, `fab` and `inv` doors call.

Each verb loads configuration once into typed objects, builds pure host jobs,
and hands them to the orchestrator with a transport factory and a reporter.
Nothing here prints; results come back as values and events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetdist import shipment
from fleetdist.builders.buildlog import Echo, stderr_echo
from fleetdist.config.env import load_env
from fleetdist.config.names import check_target
from fleetdist.errors import ConfigError
from fleetdist.orchestrate import plan as plans
from fleetdist.orchestrate.batches import OnFailure
from fleetdist.orchestrate.runner import Rollout
from fleetdist.orchestrate.stale import stale_run
from fleetdist.orchestrate.work import BatchHooks, HostJob, RolloutOptions
from fleetdist.release import steps
from fleetdist.release.facts import Facts, parse_facts
from fleetdist.report import ledger
from fleetdist.report.events import Reporter, fan_out, silent
from fleetdist.report.journal import Journal, activated_hosts, last_run, new_run_id, read_run
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.report.runlog import RunLog
from fleetdist.runbook.around import AroundBatch
from fleetdist.runbooks import RunRequest, around_batch, plan_runbook, run_runbook
from fleetdist.session import (
    DeployOptions,
    Loaded,
    Selection,
    check_confirmed,
    expand_host_patterns,
    jobs,
    load,
    lock_spec,
    look_on_each,
    read_recipe,
    resolve_recipe,
    run_on_each,
    transports,
)
from fleetdist.shipping import importing
from fleetdist.shipping.artifact import Artifact
from fleetdist.shipping.payload import preview, shipped
from fleetdist.status import HostStatus, history, status
from fleetdist.transport.base import Result
from fleetdist.verbs import HostReleases, exec_command, releases, releases_exit_code, runs

__all__ = [
    "DeployOptions",
    "HostReleases",
    "HostStatus",
    "OnFailure",
    "RunRequest",
    "Selection",
    "build",
    "deploy",
    "exec_command",
    "expand_host_patterns",
    "history",
    "import_archive",
    "plan",
    "plan_runbook",
    "releases",
    "releases_exit_code",
    "resume",
    "rollback",
    "run_runbook",
    "runs",
    "status",
    "unlock",
]


def build(sel: Selection, formats: Sequence[str] = (), echo: Echo = stderr_echo) -> list[Artifact]:
    """Build the recipe's formats (or `formats`) into dist/; `echo` gets prefixed log lines."""
    from fleetdist.builders.formats import build_recipe  # the build stack: only runs that build

    env = load_env(sel.env, sel.project.root)
    recipe = resolve_recipe(sel, env)
    return build_recipe(recipe, sel.project.dist, formats, env=env, env_name=sel.env, echo=echo)


def _rollout(
    sel: Selection,
    opts: DeployOptions,
    reporter: Reporter,
    run_id: str,
    action: str,
    header: dict[str, Any],
    loaded: Loaded,
    release_id: str | None,
    *,
    allow_untested: bool = False,
    around: BatchHooks | None = None,
) -> tuple[Rollout, Journal]:
    journal = Journal(sel.project.runs, run_id, header)
    runs = sel.project.runs
    runlog = RunLog(runs, run_id)  # each host's whole output, beside the journal
    fleet = FleetOutcome(run_id, action, loaded.recipe.app, sel.env, release_id)
    fleet.log_dir = runlog.dir
    options = _rollout_options(opts, run_id, allow_untested=allow_untested)
    options = dataclasses.replace(
        options, stale=lambda message: stale_run(message, runs), around=around
    )
    return Rollout(
        fleet=fleet,
        factory=transports(opts),
        reporter=fan_out([journal, runlog, reporter]),
        options=options,
    ), journal


def _header(sel: Selection, loaded: Loaded, action: str, **extra: object) -> dict[str, Any]:
    return {
        "action": action,
        "app": loaded.recipe.app,
        "env": sel.env,
        "recipe": loaded.recipe.source_file,
        "inventory": loaded.inventory.source,
        "hosts": [h.name for h in loaded.hosts],
        **extra,
    }


def _rollout_options(
    opts: DeployOptions, run_id: str, *, allow_untested: bool = False
) -> RolloutOptions:
    """The rollout's own view of the flags: a deploy and its dry run share it."""
    return RolloutOptions(
        lock=lock_spec(run_id, opts.lock_wait),
        parallel=opts.parallel,
        batches=opts.batches,
        max_fail=opts.max_fail,
        on_failure=opts.on_failure,
        operator=ledger.operator(),
        allow_untested=allow_untested,
    )


def deploy(sel: Selection, opts: DeployOptions, reporter: Reporter = silent) -> FleetOutcome:
    loaded = load(sel)
    check_confirmed(sel, loaded.inventory, "deploy")
    jobs(sel, loaded, "")  # every per-host path error, before building or journaling
    around = around_batch(sel, loaded, opts)  # and every around_batch step's
    artifact = shipment.artifact_for(sel, loaded, opts)
    # checked here: a bad archive leaves no run behind
    with shipped(artifact, sel.project.state / "payloads") as payload:
        run_id = opts.run_id or new_run_id()
        header = _header(
            sel,
            loaded,
            "deploy",
            release_id=artifact.release_id,
            artifact=str(artifact.path),
            options=opts.flags(),
        )
        rollout, journal = _rollout(
            sel,
            opts,
            reporter,
            run_id,
            "deploy",
            header,
            loaded,
            artifact.release_id,
            around=around,
        )
        try:
            host_jobs = jobs(sel, loaded, artifact.release_id)
            return rollout.deploy(
                host_jobs, artifact.release_id, shipment.uploads(artifact, payload)
            )
        finally:
            journal.close()


def resume(
    sel: Selection, run_id: str, opts: DeployOptions, reporter: Reporter = silent
) -> FleetOutcome:
    """Finish an interrupted rollout: same hosts, same artifact, same run id (its leases).
    `run_id` may be `last`: the newest deploy of this app and env."""
    run_id = _last_run_id(sel, ("deploy",), "--resume") if run_id == LAST else run_id
    header, _ = read_run(sel.project.runs, run_id)
    if header.get("action") != "deploy":
        raise ConfigError(f"--resume: run {run_id} was a {header.get('action')}, not a deploy")
    same = Selection(
        sel.project,
        header["recipe"],
        header["inventory"],
        header["env"],
        tuple(header["hosts"]),
        confirmed=sel.confirmed,
    )
    saved = header.get("options") or {}
    merged = DeployOptions.parse(
        **{
            **saved,
            "artifact": Path(header["artifact"]),
            "run_id": run_id,
            "accept_new_host_keys": opts.accept_new_host_keys,
            "persist": opts.persist,
        }
    )
    return deploy(same, merged, reporter)


def rollback(
    sel: Selection,
    opts: DeployOptions,
    *,
    to: str | None = None,
    run: str | None = None,
    step_back: bool = False,
    allow_untested: bool = False,
    reporter: Reporter = silent,
) -> FleetOutcome:
    """Undo a rollout: by default the last one of this app and env, or `run`.

    Undoing moves exactly the hosts that rollout cut over (or began to) back
    to where each was before it; `-H` narrows them, it never adds any.  `to`
    activates one named release on the selected hosts instead, and
    `step_back` moves each selected host to its own previous release.  Only
    releases that passed their in-place tests on a host go live there,
    unless `allow_untested`.
    """
    to = check_target(to, "--to")
    per_host: dict[str, str | None] | None = None
    if to is None and not step_back:
        run = _last_run_id(sel, ROLLOUTS) if run in (None, LAST) else run
        header, events = read_run(sel.project.runs, run)
        if header.get("action") not in ROLLOUTS:  # a `dist --hosts` run
            raise ConfigError(
                f"--run: run {run} was a {header.get('action')}, not a deploy, rollback or runbook"
                " (move dist links back with fleetdist dist -n/-c/--reset --hosts)"
            )
        per_host = _narrowed(sel, activated_hosts(events), run)
        sel = Selection(
            sel.project,
            header["recipe"],
            header["inventory"],
            header["env"],
            tuple(per_host),
            confirmed=sel.confirmed,
        )
    loaded = load(sel)
    check_confirmed(sel, loaded.inventory, "roll back")
    run_id = new_run_id()
    header = _header(sel, loaded, "rollback", to=to, undo_run=run, step_back=step_back)
    rollout, journal = _rollout(
        sel, opts, reporter, run_id, "rollback", header, loaded, to, allow_untested=allow_untested
    )
    try:
        return rollout.rollback(jobs(sel, loaded, to or ""), to, per_host)
    finally:
        journal.close()


LAST = "last"  # `--run last`, `--resume last`: the newest run of this app and env
ROLLOUTS = ("deploy", "rollback", "runbook")  # what `rollback` undoes: a runbook that deployed


def _last_run_id(
    sel: Selection, actions: tuple[str, ...] = ("deploy", "rollback"), flag: str = "rollback"
) -> str:
    """The newest run of this app and env with one of `actions`; a usage error if none."""
    recipe = read_recipe(sel)
    header = last_run(sel.project.runs, app=recipe.app, env=sel.env, actions=actions)
    if header is None:
        hint = "name a release with --to ID, or use --step-back" if flag == "rollback" else ""
        raise ConfigError(
            f"{flag}: no {' or '.join(actions)} of {recipe.app} ({sel.env}) is recorded in "
            f"{sel.project.runs}" + (f"; {hint}" if hint else "")
        )
    return str(header["run_id"])


def _narrowed(sel: Selection, moved: dict[str, str | None], run: str) -> dict[str, str | None]:
    """The hosts `run` moved, narrowed to `-H`/`-x` when given."""
    if not moved:
        raise ConfigError(f"--run: run {run} cut over no host; nothing to roll back")
    if not sel.hosts and not sel.exclude and not sel.limit:
        return moved
    chosen = {h.name for h in load(sel).hosts}
    kept = {h: t for h, t in moved.items() if h in chosen}
    if not kept:
        raise ConfigError(f"rollback: run {run} moved none of the selected hosts")
    return kept


DRY_RUN = "DRY-RUN"  # the run id a dry run's scripts show


def plan(sel: Selection, opts: DeployOptions) -> list[dict[str, Any]]:
    """`--dry-run`: the steps a deploy would send each host, as `plan.deploy_steps` makes
    them for the real rollout, after the same checks; nothing is built or written.

    Each host's facts (what decides the prune) come from the read-only probe
    `status` uses; an unreachable host is planned as an empty one and says so.
    """
    loaded = load(sel)
    jobs(sel, loaded, "")  # every per-host path error first, as a deploy checks them
    around = around_batch(sel, loaded, opts)
    artifact, payload = shipment.planned(sel, loaded, opts)
    host_jobs = jobs(sel, loaded, artifact.release_id)
    options = _rollout_options(opts, DRY_RUN)
    uploads = shipment.uploads(artifact, payload)
    out = []
    for job, facts, note in _probed(sel, opts, host_jobs):
        planned = plans.deploy_steps(job, options, uploads(job), facts, DRY_RUN)
        out.append(
            {
                "host": job.host.name,
                "root": job.ctx.layout.root,
                "release_id": job.ctx.release_id,
                "facts": note,
                "steps": _around(
                    around,
                    job.host.name,
                    [{"name": st.name, "script": st.for_host(job.host).render()} for st in planned],
                ),
            }
        )
    return out


def _around(
    around: AroundBatch | None, host: str, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A dry run's steps of `host`, with its around_batch steps around the flip."""
    return around.shown(host, entries) if around else entries


def _probed(
    sel: Selection, opts: DeployOptions, host_jobs: Sequence[HostJob]
) -> list[tuple[HostJob, Facts, str]]:
    """Each host's facts from the read-only probe; an unreachable one plans as empty."""
    probe = lambda job: steps.probe(job.ctx.layout)  # noqa: E731
    out = []
    for seen in look_on_each(sel, opts, host_jobs, probe):
        if seen.stdout is not None:
            out.append((seen.job, parse_facts(seen.stdout), "probed"))
        else:
            out.append((seen.job, Facts(), f"unknown ({seen.error}): planned as an empty host"))
    return out


def unlock(sel: Selection, opts: DeployOptions) -> FleetOutcome:
    """`--force-unlock`: break every selected host's lease and record it in its ledger."""
    loaded = load(sel)
    run_id = new_run_id()
    fleet = FleetOutcome(run_id, "unlock", loaded.recipe.app, sel.env, None)
    line = ledger.record(
        "unlock",
        app=loaded.recipe.app,
        env=sel.env,
        run=run_id,
        from_release=None,
        to_release=None,
        result="ok",
        who=ledger.operator(),
    )
    unlock_script = lambda job: steps.force_unlock(job.ctx.layout, line, opts.lock_wait)  # noqa: E731
    host_jobs = jobs(sel, loaded, "")
    for job, result in run_on_each(sel, opts, host_jobs, unlock_script, read_only=False):
        outcome = fleet.hosts[job.host.name] = HostOutcome(job.host.name, status=Status.OK)
        if not isinstance(result, Result):
            outcome.status, outcome.error = Status.UNREACHABLE, str(result)
        elif not result.ok:
            outcome.status, outcome.error = Status.FAILED, f"host {job.host.name}: {result.tail()}"
    return fleet


def import_archive(
    sel: Selection, path: Path, *, version: str | None, release: str | None
) -> Artifact:
    """`fleetdist import`: check a foreign archive as a deploy would, then write its metadata."""
    if not release and not version:
        raise ConfigError("import: give --version V (id V-<content hash>) or --release ID")
    artifact = importing.foreign(path, app=read_recipe(sel).app, release=release, version=version)
    preview(artifact, sel.project.state / "payloads")  # every member checked, nothing written
    importing.record(artifact)
    return artifact


def disconnect() -> int:
    """Close the connections `--persist` kept open; how many daemons held some."""
    from fleetdist.transport.mux.client import stop_daemons

    return stop_daemons()
