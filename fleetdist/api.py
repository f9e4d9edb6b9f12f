"""The one core the `fleetdist`, `fab` and `inv` doors call.

Each verb loads configuration once into typed objects, builds pure host jobs,
and hands them to the orchestrator with a transport factory and a reporter.
Nothing here prints; results come back as values and events.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.build.artifact import Artifact, load_artifact
from fleetdist.build.buildlog import Echo, stderr_echo
from fleetdist.build.formats import DEPLOYABLE, TAR_FORMATS, build_recipe
from fleetdist.build.safety import check_tar
from fleetdist.config.env import expand, load_env
from fleetdist.config.hosts import select_hosts
from fleetdist.config.loader import check_release_id, load_inventory, load_recipe
from fleetdist.config.project import Project
from fleetdist.config.schema import Host, Inventory, Recipe
from fleetdist.errors import ConfigError, TransportError
from fleetdist.orchestrate.batches import failure_budget, plan_batches
from fleetdist.orchestrate.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.orchestrate.runner import HostJob, Rollout, RolloutOptions, parallel
from fleetdist.release import steps
from fleetdist.release.layout import ReleaseLayout, host_root
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import Context
from fleetdist.report import ledger
from fleetdist.report.events import Reporter, fan_out, silent
from fleetdist.report.journal import Journal, activated_hosts, last_run, new_run_id, read_run
from fleetdist.transport.factory import transport_factory


@dataclass(frozen=True)
class Selection:
    """What every verb is about: project, recipe, inventory, environment, hosts."""

    project: Project
    recipe: str | None = None
    inventory: str | None = None
    env: str = "prod"
    hosts: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployOptions:
    canary: int = 0
    batch: str | None = None
    parallel: int = 10
    max_connect: int = 10
    max_fail: str | None = None
    on_failure: str = "halt"
    lock_wait: float = 0.0
    accept_new_host_keys: bool = False
    artifact: Path | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Loaded:
    """Configuration loaded once and validated; later code trusts it."""

    recipe: Recipe
    inventory: Inventory
    env: dict[str, str]
    hosts: list[Host]


def _recipe(sel: Selection, env: Mapping[str, str]) -> Recipe:
    """Load the recipe and resolve `{VAR}` in its version (process env, then env file)."""
    recipe = load_recipe(sel.project.recipe_path(sel.recipe))
    where = f"{recipe.source_file}: version"
    version = expand(recipe.version, ChainMap(dict(os.environ), dict(env)), where=where)
    return dataclasses.replace(recipe, version=check_release_id(version, where))


def load(sel: Selection, *, need_hosts: bool = True) -> Loaded:
    env = load_env(sel.env, sel.project.root)
    recipe = _recipe(sel, env)
    inventory = load_inventory(sel.project.inventory_path(sel.inventory), env, os.environ)
    names = select_hosts(
        sel.hosts,
        list(inventory.hosts),
        inventory.groups,
        exclude=sel.exclude,
        source=inventory.source,
    )
    if need_hosts and not names:
        raise ConfigError(f"{inventory.source}: no hosts selected")
    return Loaded(recipe, inventory, env, [inventory.hosts[n] for n in names])


def expand_host_patterns(sel: Selection, patterns: Sequence[str]) -> list[str]:
    """`fleetdist hosts PATTERN...`: inventory-aware expansion (groups allowed)."""
    env = load_env(sel.env, sel.project.root)
    inventory = load_inventory(sel.project.inventory_path(sel.inventory), env, os.environ)
    return select_hosts(patterns, list(inventory.hosts), inventory.groups, source=inventory.source)


def context_for(loaded: Loaded, host: Host, release_id: str, env_name: str) -> Context:
    """Resolve the recipe for one host: `{VAR}` in deploy_root and env values."""
    recipe = loaded.recipe
    lookup = ChainMap(
        {"host": host.name, "app": recipe.app, "env": env_name},
        host.vars,
        dict(os.environ),
        loaded.env,
    )
    where = f"{recipe.source_file}: deploy_root (host {host.name})"
    deploy_root = expand(recipe.deploy_root, lookup, where=where)
    if not posixpath.isabs(deploy_root):
        raise ConfigError(f"{where}: {deploy_root!r} is not an absolute path")
    env = tuple(
        (k, expand(v, lookup, where=f"{recipe.source_file}: env.{k}"))
        for k, v in recipe.env.items()
    )
    return Context(
        layout=ReleaseLayout(host_root(deploy_root, host.local_root)),
        app=recipe.app,
        release_id=release_id,
        env_name=env_name,
        host=host.name,
        env=env,
        secret_env=frozenset(recipe.secret_env),
        test=recipe.test,
        before_activate=recipe.hooks.before_activate,
        after_activate=recipe.hooks.after_activate,
        healthcheck=recipe.healthcheck,
        keep=recipe.keep,
    )


def build(sel: Selection, formats: Sequence[str] = (), echo: Echo = stderr_echo) -> list[Artifact]:
    """Build the recipe's formats (or `formats`) into dist/; `echo` gets prefixed log lines."""
    env = load_env(sel.env, sel.project.root)
    recipe = _recipe(sel, env)
    return build_recipe(recipe, sel.project.dist, formats, env=env, env_name=sel.env, echo=echo)


def _artifact(sel: Selection, loaded: Loaded, path: Path | None) -> Artifact:
    if path is not None:
        artifact = load_artifact(path, app=loaded.recipe.app)
    else:
        artifact = build_recipe(loaded.recipe, sel.project.dist, ("tar.gz",))[0]
    if artifact.format not in DEPLOYABLE:
        raise ConfigError(f"--artifact: {artifact.format} artifacts cannot be deployed yet")
    if artifact.format in TAR_FORMATS:
        check_tar(artifact.path)
    return artifact


def _jobs(sel: Selection, loaded: Loaded, release_id: str) -> list[HostJob]:
    return [HostJob(h, context_for(loaded, h, release_id, sel.env)) for h in loaded.hosts]


def _lock(run_id: str, wait: float) -> LockSpec:
    who = ledger.operator()
    return LockSpec(run_id=run_id, holder=f"{who} pid={os.getpid()} run={run_id}", wait=wait)


def _rollout(
    sel: Selection,
    opts: DeployOptions,
    reporter: Reporter,
    run_id: str,
    action: str,
    header: dict[str, Any],
    loaded: Loaded,
    release_id: str | None,
) -> tuple[Rollout, Journal]:
    journal = Journal(sel.project.runs, run_id, header)
    fleet = FleetOutcome(run_id, action, loaded.recipe.app, sel.env, release_id)
    options = RolloutOptions(
        lock=_lock(run_id, opts.lock_wait),
        canary=opts.canary,
        batch=opts.batch,
        parallel=opts.parallel,
        max_fail=opts.max_fail,
        on_failure=opts.on_failure,
        operator=ledger.operator(),
    )
    factory = transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys, max_connect=opts.max_connect
    )
    return Rollout(
        fleet=fleet, factory=factory, reporter=fan_out([journal, reporter]), options=options
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
    _jobs(sel, loaded, "")
    names = [h.name for h in loaded.hosts]
    failure_budget(opts.max_fail, len(names))
    plan_batches(names, canary=opts.canary, batch=opts.batch)


def deploy(sel: Selection, opts: DeployOptions, reporter: Reporter = silent) -> FleetOutcome:
    loaded = load(sel)
    _check(sel, loaded, opts)
    artifact = _artifact(sel, loaded, opts.artifact)
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
        return rollout.deploy(_jobs(sel, loaded, artifact.release_id), artifact)
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
        }
    )
    return deploy(same, merged, reporter)


def _options_json(opts: DeployOptions) -> dict[str, Any]:
    keep = ("canary", "batch", "parallel", "max_connect", "max_fail", "on_failure", "lock_wait")
    return {k: getattr(opts, k) for k in keep}


def rollback(
    sel: Selection,
    opts: DeployOptions,
    *,
    to: str | None = None,
    run: str | None = None,
    reporter: Reporter = silent,
) -> FleetOutcome:
    """Re-activate the previous release (or `to`); `run` undoes exactly that rollout."""
    targets: Mapping[str, str | None] = {}
    if run is not None:
        header, events = read_run(sel.project.runs, run)
        targets = activated_hosts(events)
        sel = Selection(
            sel.project,
            header["recipe"],
            header["inventory"],
            header["env"],
            tuple(targets) or ("__none__",),
        )
        if not targets:
            raise ConfigError(f"--run: run {run} cut over no host; nothing to roll back")
    elif not sel.hosts:
        sel = _last_hosts(sel)
    loaded = load(sel)
    run_id = new_run_id()
    header = _header(sel, loaded, "rollback", to=to, undo_run=run)
    rollout, journal = _rollout(sel, opts, reporter, run_id, "rollback", header, loaded, to)
    try:
        per_host = {h: t for h, t in targets.items() if t} if run is not None else None
        return rollout.rollback(_jobs(sel, loaded, to or ""), to, per_host)
    finally:
        journal.close()


def _last_hosts(sel: Selection) -> Selection:
    """With no -H, roll back the hosts of the last deploy of this app and env."""
    recipe = _recipe(sel, load_env(sel.env, sel.project.root))
    header = last_run(sel.project.runs, app=recipe.app, env=sel.env)
    if header is None:
        return sel
    return Selection(
        sel.project, sel.recipe, sel.inventory, sel.env, tuple(header["hosts"]), sel.exclude
    )


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


def status(sel: Selection, opts: DeployOptions = DeployOptions()) -> list[HostStatus]:
    """Probe every host read-only; flag drift inside each group."""
    loaded = load(sel)
    jobs = _jobs(sel, loaded, "")
    factory = transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys, max_connect=opts.max_connect
    )

    def one(job: HostJob) -> HostStatus:
        row = HostStatus(job.host.name, loaded.recipe.app, list(job.host.groups))
        try:
            transport = factory(job.host)
            try:
                result = transport.run(steps.probe(job.ctx.layout, None).text)
            finally:
                transport.close()
        except Exception as exc:
            row.reachable, row.error = False, str(exc)
            return row
        if not result.ok:
            row.error = result.tail()
            return row
        facts = steps.parse_facts(result.stdout)
        row.current, row.previous, row.lock = facts.current, facts.previous, facts.lock
        row.releases = facts.release_ids
        return row

    rows = parallel(one, jobs, opts.parallel)
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


def history(sel: Selection, opts: DeployOptions = DeployOptions()) -> list[dict[str, Any]]:
    """Every host's ledger, merged and sorted by time."""
    loaded = load(sel)
    jobs = _jobs(sel, loaded, "")
    factory = transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys, max_connect=opts.max_connect
    )

    def one(job: HostJob) -> list[dict[str, Any]]:
        transport = factory(job.host)
        try:
            result = transport.run(steps.read_ledger(job.ctx.layout).text)
        finally:
            transport.close()
        return [{"host": job.host.name, **entry} for entry in ledger.parse(result.stdout)]

    merged = [entry for entries in parallel(one, jobs, opts.parallel) for entry in entries]
    return sorted(merged, key=lambda e: (str(e.get("time", "")), e["host"]))


def plan(sel: Selection, opts: DeployOptions) -> list[dict[str, Any]]:
    """`--dry-run`: the exact scripts a deploy would send, per host, without touching any."""
    loaded = load(sel)
    artifact = _artifact(sel, loaded, opts.artifact)
    lock = _lock("DRY-RUN", opts.lock_wait)
    halt = opts.on_failure != "rollback"
    out = []
    for job in _jobs(sel, loaded, artifact.release_id):
        ctx = job.ctx
        incoming = ctx.layout.incoming(f"{ctx.release_id}.{artifact.format}")
        upload = steps.Upload(incoming, artifact.sha256, artifact.format)
        line = "(ledger line written at run time)"
        planned = [
            ("probe", steps.probe(ctx.layout, lock).shown),
            (
                "stage",
                f"# stdin: {artifact.path} (skipped, and no upload, if already staged)\n"
                + steps.stage(ctx, lock, upload, bundle=artifact.format == "venv").shown,
            ),
            (
                "activate",
                steps.activate(
                    ctx, lock, ctx.release_id, ledger_ok=line, ledger_reverted=line, release=halt
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
    factory = transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys, max_connect=opts.max_connect
    )
    who = ledger.operator()

    def one(job: HostJob) -> HostOutcome:
        outcome = HostOutcome(job.host.name, status=Status.OK)
        line = ledger.record(
            "unlock",
            app=job.ctx.app,
            env=sel.env,
            run=run_id,
            from_release=None,
            to_release=None,
            result="ok",
            who=who,
        )
        try:
            transport = factory(job.host)
            try:
                result = transport.run(steps.force_unlock(job.ctx.layout, line).text)
            finally:
                transport.close()
        except TransportError as exc:
            outcome.status, outcome.error = Status.UNREACHABLE, str(exc)
            return outcome
        if not result.ok:
            outcome.status, outcome.error = Status.FAILED, f"host {job.host.name}: {result.tail()}"
        return outcome

    for outcome in parallel(one, _jobs(sel, loaded, ""), opts.parallel):
        fleet.hosts[outcome.host] = outcome
    return fleet
