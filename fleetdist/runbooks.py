"""The `run` verb: a runbook against the project's inventory and recipes (see `runbook`).

`run_runbook` and `plan_runbook` (its `--dry-run`) share `_prepare`: the
runbook loaded and validated, its params resolved, the hosts selected (the
runbook's `hosts:`, or `-H`, narrowed by `-x`/`--limit`), the inventory's
`confirm: true` honoured, and every host's steps resolved (`plan_host`),
so both fail the same way, exit 2, before anything is built, journaled or
sent.  A run is journaled like a rollout (`.fleetdist/runs/<run>.jsonl`,
so `fleetdist runs` lists it), and `--resume RUN|last` finishes it with
the params, hosts and artifacts its journal recorded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist import shipment
from fleetdist.config.loader import load_recipe
from fleetdist.config.names import check_run_id
from fleetdist.config.project import Project
from fleetdist.config.schema import Host, Inventory
from fleetdist.errors import ConfigError, UsageError
from fleetdist.orchestrate.batches import OnFailure
from fleetdist.orchestrate.stale import stale_run
from fleetdist.orchestrate.work import RolloutOptions
from fleetdist.release import steps
from fleetdist.release.facts import Facts, parse_facts
from fleetdist.report import ledger
from fleetdist.report.events import Reporter, fan_out, silent
from fleetdist.report.journal import Journal, new_run_id, read_run
from fleetdist.report.runlog import RunLog
from fleetdist.runbook import dryrun, params, resume
from fleetdist.runbook.actions import DeployRelease, Planned, RollbackRelease, Scope, plan_host
from fleetdist.runbook.actions import recipe_key as step_recipe
from fleetdist.runbook.around import AroundBatch, plan_around
from fleetdist.runbook.deploying import RecipeRun
from fleetdist.runbook.engine import Engine, Setup
from fleetdist.runbook.load import load_runbook
from fleetdist.runbook.model import Deploy, Runbook, Strategy
from fleetdist.runbook.outcome import RunbookOutcome
from fleetdist.runbook.subst import Values
from fleetdist.session import (
    DeployOptions,
    Loaded,
    Selection,
    check_confirmed,
    jobs,
    lock_spec,
    look_on_each,
    read_inventory,
    selected,
    transports,
)
from fleetdist.shipping.payload import shipped


def around_batch(sel: Selection, loaded: Loaded, opts: DeployOptions) -> AroundBatch | None:
    """A deploy's `around_batch` hooks (see `runbook.around`), every host's steps resolved
    now, so a missing host var stops the deploy before anything is built or sent."""
    plans = plan_around(loaded.around, loaded.hosts, loaded.inventory)
    if plans is None:
        return None
    return AroundBatch(plans, cwd=sel.project.root, yes=sel.confirmed, parallel=opts.parallel)


LAST = "last"
DRY_RUN = "DRY-RUN"  # the run id a dry run's scripts show


@dataclass(frozen=True)
class RunRequest:
    """`fleetdist run RUNBOOK [--param k=v]... [--resume RUN|last]`."""

    runbook: str
    params: tuple[str, ...] = ()
    resume: str | None = None
    parallel: int | None = None  # --parallel: overrides the runbook's strategy.parallel


def runbook_path(project: Project, name: str) -> Path:
    """`runbooks/NAME.yaml` (or .yml), or a path to a runbook file."""
    folder = project.root / "runbooks"
    for path in (folder / f"{name}.yaml", folder / f"{name}.yml", folder / name, Path(name)):
        if path.is_file():
            return path
    raise ConfigError(f"run: no runbook {name!r} (looked in {folder})")


@dataclass(frozen=True)
class _Prepared:
    """Everything a run and its dry run share, checked."""

    runbook: Runbook
    params: dict[str, str]
    sel: Selection  # the run's own: its hosts, its env
    inventory: Inventory
    hosts: dict[str, Host]
    plans: dict[str, list[Planned]]
    loaded: dict[str, Loaded]  # every recipe the run uses, by its key
    deploys: tuple[str, ...]  # the recipes it deploys
    leases: tuple[str, ...]  # the recipes whose lease it holds
    default: str | None  # the recipe of deploy steps that name none (-r, or the only one)


def _prepare(sel: Selection, req: RunRequest, header: dict[str, Any] | None) -> _Prepared:
    rb = load_runbook(runbook_path(sel.project, req.runbook))
    values, run_sel = _scope(sel, req, rb, header)
    env, inventory = read_inventory(run_sel)
    names = selected(run_sel, inventory)
    if not names:
        raise ConfigError(f"{inventory.source}: no hosts selected")
    check_confirmed(sel, inventory, "run a runbook on")
    default = _default_recipe(run_sel)
    deployed = _deployed(rb, values, default)
    scope = Scope(values, inventory, default, deployed[0] if len(deployed) == 1 else default)
    hosts = {n: inventory.hosts[n] for n in names}
    plans = {n: plan_host(rb.steps, hosts[n], scope) for n in names}
    leases = _used(plans) or ((default,) if default else ())
    loaded = {
        key: Loaded(load_recipe(sel.project.recipe_path(key)), inventory, env, list(hosts.values()))
        for key in leases
    }
    for load in loaded.values():
        jobs(run_sel, load, "")  # every per-host path error now
    return _Prepared(
        rb, values, run_sel, inventory, hosts, plans, loaded, tuple(deployed), leases, default
    )


def _scope(
    sel: Selection, req: RunRequest, rb: Runbook, header: dict[str, Any] | None
) -> tuple[dict[str, str], Selection]:
    """The params and the run's own selection: as given, or (resuming) as the journal
    recorded them, with the run's inventory and recipe whatever -i and -r say now."""
    if header is None:
        return params.resolve(rb, req.params), dataclasses.replace(sel, hosts=sel.hosts or rb.hosts)
    if header.get("runbook") != rb.name or header.get("digest") != rb.digest:
        raise ConfigError(
            f"--resume: {rb.source} changed since run {header.get('run_id')} started "
            "(or is another runbook): resume it with the file as it was, or start a new run"
        )
    saved = dict(header.get("params") or {})
    values = params.resolve(rb, [f"{k}={v}" for k, v in saved.items()])
    run_sel = dataclasses.replace(
        sel,
        hosts=tuple(header["hosts"]),
        inventory=header["inventory"],
        recipe=header.get("default_recipe"),
    )
    return values, run_sel


def _default_recipe(sel: Selection) -> str | None:
    """`-r`, else the only recipe in recipes/ (by name), else none."""
    if sel.recipe:
        return sel.recipe
    try:
        path = sel.project.recipe_path(None)
    except ConfigError:
        return None
    return path.stem if path.parent == sel.project.recipes else str(path)


def _deployed(rb: Runbook, values: dict[str, str], default: str | None) -> list[str]:
    """The recipes the runbook's deploy steps name (their `recipe:` may use params only)."""
    keys = [
        step_recipe(body.kind.recipe, Values(values), default, body.where)
        for step in rb.steps
        for body in (step.body, step.undo)
        if body is not None and isinstance(body.kind, Deploy)
    ]
    return list(dict.fromkeys(keys))


def _used(plans: dict[str, list[Planned]]) -> tuple[str, ...]:
    keys = [
        action.recipe
        for planned in (p for host in plans.values() for p in host)
        for action in (planned.action, planned.undo)
        if isinstance(action, DeployRelease | RollbackRelease)
    ]
    return tuple(dict.fromkeys(keys))


def _options(run_id: str, opts: DeployOptions, runs: Path) -> RolloutOptions:
    """A deploy step's rollout options: the run's lease, kept (`holds_leases`)."""
    return RolloutOptions(
        lock=lock_spec(run_id, opts.lock_wait),
        parallel=1,
        on_failure=OnFailure.ROLLBACK,
        operator=ledger.operator(),
        stale=lambda message: stale_run(message, runs),
    )


def _recipe_sel(p: _Prepared, key: str) -> Selection:
    return dataclasses.replace(p.sel, recipe=key)


# -- a run ----------------------------------------------------------------------


def run_runbook(
    sel: Selection, req: RunRequest, opts: DeployOptions, reporter: Reporter = silent
) -> RunbookOutcome:
    """Run a runbook (or finish one, `req.resume`); see `runbook.engine`."""
    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    run_id = opts.run_id or new_run_id()
    if req.resume:
        if req.params or sel.hosts or sel.exclude or sel.limit:
            raise UsageError(
                "--resume: the params and hosts are the run's own; drop --param/-H/-x/--limit"
            )
        run_id, header, events = _resumed(sel, req)
    p = _prepare(sel, req, header)
    runs = sel.project.runs
    with ExitStack() as stack:
        recipes, artifacts = {}, {}
        for key, loaded in p.loaded.items():
            release_id, uploads = None, None
            if key in p.deploys:
                saved = (header or {}).get("artifacts", {}).get(key)
                given = dataclasses.replace(opts, artifact=Path(saved)) if saved else opts
                artifact = shipment.artifact_for(_recipe_sel(p, key), loaded, given)
                payload = stack.enter_context(shipped(artifact, sel.project.state / "payloads"))
                release_id, uploads = artifact.release_id, shipment.uploads(artifact, payload)
                artifacts[key] = str(artifact.path)
            host_jobs = {j.host.name: j for j in jobs(p.sel, loaded, release_id or "")}
            options = _options(run_id, opts, runs)
            recipes[key] = RecipeRun(
                key, loaded.recipe.app, release_id, host_jobs, options, run_id, uploads
            )
        journal = Journal(runs, run_id, _header(p, artifacts))
        stack.callback(journal.close)
        runlog = RunLog(runs, run_id)
        outcome = RunbookOutcome(
            run_id, p.runbook.name, p.sel.env, p.params, resumed=header is not None
        )
        outcome.log_dir = runlog.dir
        setup = Setup(
            hosts=p.hosts,
            plans=p.plans,
            strategy=_strategy(p.runbook, req),
            recipes=recipes,
            leases=p.leases,
            factory=transports(opts),
            reporter=fan_out([journal, runlog, reporter]),
            cwd=sel.project.root,
            yes=sel.confirmed,
            prior=resume.progress(events, [s.name for s in p.runbook.steps], str(journal.path)),
            stale=lambda message: stale_run(message, runs),
        )
        return Engine(setup, outcome).run()


def _strategy(rb: Runbook, req: RunRequest) -> Strategy:
    if req.parallel is None:
        return rb.strategy
    return dataclasses.replace(rb.strategy, parallel=req.parallel)


def _header(p: _Prepared, artifacts: dict[str, str]) -> dict[str, Any]:
    """The journal's first line: what `--resume` needs to finish the run as it was, and
    what `rollback` needs to undo its deploys (`app`, `recipe`: of the first recipe it
    deploys; none for a runbook that deploys nothing, which `rollback` then ignores)."""
    first = p.loaded[p.deploys[0]] if p.deploys else None
    return {
        "action": "runbook",
        "runbook": p.runbook.name,
        "runbook_file": p.runbook.source,
        "digest": p.runbook.digest,
        "params": p.params,
        "app": first.recipe.app if first else None,  # a plain `rollback` undoes its deploys
        "env": p.sel.env,
        "recipe": first.recipe.source_file if first else None,
        "inventory": p.inventory.source,
        "hosts": list(p.hosts),
        "artifacts": artifacts,
        "default_recipe": p.default,
    }


def _resumed(sel: Selection, req: RunRequest) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The run `--resume` names (`last`: the newest run of this runbook and env)."""
    run_id = req.resume or LAST
    if run_id == LAST:
        run_id = _last(sel.project.runs, Path(req.runbook).stem, sel.env)
    check_run_id(run_id, "--resume")
    header, events = read_run(sel.project.runs, run_id)
    if header.get("action") != "runbook":
        raise ConfigError(f"--resume: run {run_id} was a {header.get('action')}, not a runbook")
    if header.get("env") != sel.env:
        raise ConfigError(f"--resume: run {run_id} was for --env {header.get('env')}")
    if problem := _header_problem(header):
        raise ConfigError(f"{sel.project.runs / f'{run_id}.jsonl'}:1: {problem}")
    return run_id, header, events


def _strings(value: object) -> bool:
    """True for a mapping of strings to strings."""
    items = value.items() if isinstance(value, dict) else ()
    return isinstance(value, dict) and all(isinstance(x, str) for kv in items for x in kv)


def _header_problem(header: dict[str, Any]) -> str | None:
    """What in a runbook run's header `--resume` cannot take as written, or None (its host
    names and ids are checked by `read_run`): the journal is a file anyone may edit."""
    if not isinstance(header.get("inventory"), str) or not header["inventory"]:
        return "inventory: expected the inventory file's path"
    if not _strings(header.get("params", {})):
        return "params: expected a mapping of param names to values"
    if not header.get("hosts"):
        return "hosts: expected the run's host names"
    if not _strings(header.get("artifacts", {})):
        return "artifacts: expected a mapping of recipes to artifact paths"
    if not isinstance(header.get("default_recipe"), str | None):
        return "default_recipe: expected a recipe name or nothing"
    return None


def _last(runs: Path, runbook: str, env: str) -> str:
    for path in sorted(runs.glob("*.jsonl"), reverse=True) if runs.is_dir() else []:
        try:
            with path.open(encoding="utf-8") as fh:
                first = json.loads(fh.readline())
        except (OSError, ValueError):
            continue
        ours = isinstance(first, dict) and first.get("action") == "runbook"
        if ours and first.get("runbook") == runbook and first.get("env") == env:
            return path.stem
    raise ConfigError(f"--resume last: no run of runbook {runbook} ({env}) is recorded in {runs}")


# -- a dry run ------------------------------------------------------------------


def plan_runbook(sel: Selection, req: RunRequest, opts: DeployOptions) -> dict[str, Any]:
    """`run --dry-run`: every step each host would be sent, batch by batch, after the same
    checks as a run; nothing is built, journaled or changed (hosts are probed read-only)."""
    if req.resume:
        raise UsageError("--dry-run: not with --resume")
    p = _prepare(sel, req, None)
    recipes: dict[str, RecipeRun] = {}
    for key, loaded in p.loaded.items():
        release_id, uploads = None, None
        if key in p.deploys:
            artifact, payload = shipment.planned(_recipe_sel(p, key), loaded, opts)
            release_id, uploads = artifact.release_id, shipment.uploads(artifact, payload)
        host_jobs = {j.host.name: j for j in jobs(p.sel, loaded, release_id or "")}
        options = _options(DRY_RUN, opts, sel.project.runs)
        recipes[key] = RecipeRun(
            key, loaded.recipe.app, release_id, host_jobs, options, DRY_RUN, uploads
        )
    facts = _probed(p, opts, recipes, _used(p.plans))
    return {
        "runbook": p.runbook.name,
        "params": p.params,
        "hosts": list(p.hosts),
        "batches": dryrun.batches(
            list(p.hosts), p.runbook.strategy, p.plans, recipes, p.leases, facts
        ),
    }


def _probed(
    p: _Prepared, opts: DeployOptions, recipes: dict[str, RecipeRun], keys: Sequence[str]
) -> dict[tuple[str, str], Facts]:
    """What each host's read-only probe says, per recipe a step deploys or rolls back."""
    out: dict[tuple[str, str], Facts] = {}
    for key in keys:
        host_jobs = list(recipes[key].jobs.values())
        probe = lambda job: steps.probe(job.ctx.layout)  # noqa: E731
        for seen in look_on_each(p.sel, opts, host_jobs, probe):
            if seen.stdout is not None:
                out[(key, seen.job.host.name)] = parse_facts(seen.stdout)
    return out
