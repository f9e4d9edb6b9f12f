"""The one core the `fleetdist`, `fab` and `inv` doors call.

Each verb loads configuration once into typed objects, builds pure host jobs,
and hands them to the orchestrator with a transport factory and a reporter.
Nothing here prints; results come back as values and events.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetdist.builders.buildlog import Echo, stderr_echo
from fleetdist.config.env import load_env
from fleetdist.config.names import check_target
from fleetdist.errors import ConfigError
from fleetdist.orchestrate.batches import failure_budget, plan_batches
from fleetdist.orchestrate.runner import Rollout
from fleetdist.orchestrate.stale import stale_run
from fleetdist.orchestrate.work import RolloutOptions
from fleetdist.release import steps
from fleetdist.report import ledger
from fleetdist.report.events import Reporter, fan_out, silent
from fleetdist.report.journal import Journal, activated_hosts, last_run, new_run_id, read_run
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.report.runlog import RunLog
from fleetdist.session import (
    DeployOptions,
    Loaded,
    Selection,
    check_artifact_fits,
    expand_host_patterns,
    jobs,
    load,
    lock_spec,
    read_recipe,
    resolve_recipe,
    resolve_version,
    run_on_each,
    transports,
)
from fleetdist.shipping import importing
from fleetdist.shipping.artifact import DEPLOYABLE, Artifact
from fleetdist.shipping.payload import preview, shipped
from fleetdist.status import HostStatus, history, status
from fleetdist.transport.base import Result

__all__ = [
    "DeployOptions",
    "HostStatus",
    "Selection",
    "build",
    "deploy",
    "expand_host_patterns",
    "history",
    "import_archive",
    "plan",
    "resume",
    "rollback",
    "status",
    "unlock",
]


def build(sel: Selection, formats: Sequence[str] = (), echo: Echo = stderr_echo) -> list[Artifact]:
    """Build the recipe's formats (or `formats`) into dist/; `echo` gets prefixed log lines."""
    from fleetdist.builders.formats import build_recipe  # the build stack: only runs that build

    env = load_env(sel.env, sel.project.root)
    recipe = resolve_recipe(sel, env)
    return build_recipe(recipe, sel.project.dist, formats, env=env, env_name=sel.env, echo=echo)


def _artifact(sel: Selection, loaded: Loaded, opts: DeployOptions) -> Artifact:
    path = opts.artifact
    if path is not None:
        app = loaded.recipe.app
        artifact = importing.load(path, app=app, release=opts.release, version=opts.version)
    elif opts.release or opts.version:
        raise ConfigError("--release/--version: only with --artifact PATH")
    else:
        from fleetdist.builders.formats import build_recipe

        recipe = resolve_version(loaded.recipe, loaded.env)
        artifact = build_recipe(recipe, sel.project.dist, ("tar.gz",))[0]
    if artifact.format not in DEPLOYABLE:
        raise ConfigError(f"--artifact: {artifact.format} artifacts cannot be deployed yet")
    check_artifact_fits(loaded, artifact, sel.env)
    return artifact


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
) -> tuple[Rollout, Journal]:
    journal = Journal(sel.project.runs, run_id, header)
    runs = sel.project.runs
    runlog = RunLog(runs, run_id)  # each host's whole output, beside the journal
    fleet = FleetOutcome(run_id, action, loaded.recipe.app, sel.env, release_id)
    fleet.log_dir = runlog.dir
    options = RolloutOptions(
        lock=lock_spec(run_id, opts.lock_wait),
        canary=opts.canary,
        batch=opts.batch,
        parallel=opts.parallel,
        max_fail=opts.max_fail,
        on_failure=opts.on_failure,
        operator=ledger.operator(),
        allow_untested=allow_untested,
        stale=lambda message: stale_run(message, runs),
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


def _check(sel: Selection, loaded: Loaded, opts: DeployOptions) -> None:
    """Fail on any per-host path or rollout flag error before building or journaling."""
    jobs(sel, loaded, "")
    names = [h.name for h in loaded.hosts]
    failure_budget(opts.max_fail, len(names))
    plan_batches(names, canary=opts.canary, batch=opts.batch)


def deploy(sel: Selection, opts: DeployOptions, reporter: Reporter = silent) -> FleetOutcome:
    loaded = load(sel)
    _check(sel, loaded, opts)
    artifact = _artifact(sel, loaded, opts)
    # checked here: a bad archive leaves no run behind
    with shipped(artifact, sel.project.state / "payloads") as payload:
        run_id = opts.run_id or new_run_id()
        header = _header(
            sel,
            loaded,
            "deploy",
            release_id=artifact.release_id,
            artifact=str(artifact.path),
            options=_options_json(opts),
        )
        rollout, journal = _rollout(
            sel, opts, reporter, run_id, "deploy", header, loaded, artifact.release_id
        )
        try:
            return rollout.deploy(jobs(sel, loaded, artifact.release_id), artifact, payload)
        finally:
            journal.close()


def resume(
    sel: Selection, run_id: str, opts: DeployOptions, reporter: Reporter = silent
) -> FleetOutcome:
    """Finish an interrupted rollout: same hosts, same artifact, same run id (its leases)."""
    header, _ = read_run(sel.project.runs, run_id)
    if header.get("action") != "deploy":
        raise ConfigError(f"--resume: run {run_id} was a {header.get('action')}, not a deploy")
    same = Selection(
        sel.project, header["recipe"], header["inventory"], header["env"], tuple(header["hosts"])
    )
    saved = header.get("options") or {}
    merged = DeployOptions(
        **{
            **saved,
            "artifact": Path(header["artifact"]),
            "run_id": run_id,
            "accept_new_host_keys": opts.accept_new_host_keys,
            "persist": opts.persist,
        }
    )
    return deploy(same, merged, reporter)


def _options_json(opts: DeployOptions) -> dict[str, Any]:
    keep = ("canary", "batch", "parallel", "max_connect", "max_fail", "on_failure", "lock_wait",
            "release", "version")  # fmt: skip
    return {k: getattr(opts, k) for k in keep}


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
        run = _last_run_id(sel) if run is None else run
        header, events = read_run(sel.project.runs, run)
        per_host = _narrowed(sel, activated_hosts(events), run)
        sel = Selection(
            sel.project, header["recipe"], header["inventory"], header["env"], tuple(per_host)
        )
    loaded = load(sel)
    run_id = new_run_id()
    header = _header(sel, loaded, "rollback", to=to, undo_run=run, step_back=step_back)
    rollout, journal = _rollout(
        sel, opts, reporter, run_id, "rollback", header, loaded, to, allow_untested=allow_untested
    )
    try:
        return rollout.rollback(jobs(sel, loaded, to or ""), to, per_host)
    finally:
        journal.close()


def _last_run_id(sel: Selection) -> str:
    """The newest deploy or rollback of this app and env; a usage error if there is none."""
    recipe = read_recipe(sel)
    actions = ("deploy", "rollback")
    header = last_run(sel.project.runs, app=recipe.app, env=sel.env, actions=actions)
    if header is None:
        raise ConfigError(
            f"rollback: no rollout of {recipe.app} ({sel.env}) is recorded in "
            f"{sel.project.runs}; name a release with --to ID, or use --step-back"
        )
    return str(header["run_id"])


def _narrowed(sel: Selection, moved: dict[str, str | None], run: str) -> dict[str, str | None]:
    """The hosts `run` moved, narrowed to `-H`/`-x` when given."""
    if not moved:
        raise ConfigError(f"--run: run {run} cut over no host; nothing to roll back")
    if not sel.hosts and not sel.exclude:
        return moved
    chosen = {h.name for h in load(sel).hosts}
    kept = {h: t for h, t in moved.items() if h in chosen}
    if not kept:
        raise ConfigError(f"rollback: run {run} moved none of the selected hosts")
    return kept


def plan(sel: Selection, opts: DeployOptions) -> list[dict[str, Any]]:
    """`--dry-run`: the exact scripts a deploy would send, per host, without touching any."""
    loaded = load(sel)
    artifact = _artifact(sel, loaded, opts)
    payload = preview(artifact, sel.project.state / "payloads")  # checked, nothing written
    sent = ", ".join(filter(None, (str(artifact.path), payload.note)))
    lock = lock_spec("DRY-RUN", opts.lock_wait)
    halt = opts.on_failure != "rollback"
    out = []
    for job in jobs(sel, loaded, artifact.release_id):
        ctx = job.ctx
        upload = steps.Upload.of(ctx, payload.sha256, payload.format, artifact.sha256)
        fields = dict(app=ctx.app, env=sel.env, run="DRY-RUN", who=ledger.operator())
        ledgers = steps.Ledgers(
            ok=ledger.template("deploy", result="ok", **fields),
            reverted=ledger.template("deploy", result="reverted", **fields),
            recovered=ledger.template("recover", result="reverted", **fields),
        )
        bundle = artifact.format == "venv"
        planned = [
            (
                "prepare",
                f"# stdin: {sent} (sent only after the host prints {steps.SEND})\n"
                + steps.prepare(ctx, lock, upload, ledgers=ledgers, bundle=bundle).shown,
            ),
            (
                "activate",
                steps.activate(
                    ctx,
                    lock,
                    ctx.release_id,
                    ledger_ok=ledgers.ok,
                    ledger_reverted=ledgers.reverted,
                    ledger_recovered=ledgers.recovered,
                    release=halt,
                ).shown,
            ),
        ]
        if not halt:  # --on-failure rollback keeps every lease until the rollout ends
            planned.append(("finish", steps.finish(ctx.layout, lock, ()).shown))
        out.append(
            {
                "host": job.host.name,
                "root": ctx.layout.root,
                "release_id": ctx.release_id,
                "steps": [{"name": n, "script": s} for n, s in planned],
            }
        )
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
    unlock_script = lambda job: steps.force_unlock(job.ctx.layout, line, opts.lock_wait).text  # noqa: E731
    for job, result in run_on_each(sel, opts, jobs(sel, loaded, ""), unlock_script):
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
