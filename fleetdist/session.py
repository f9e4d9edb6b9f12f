"""Configuration loaded once per verb, and the per-host context every verb builds on.

`load` reads recipe, env stack and inventory into typed objects and selects
the hosts; `jobs` resolves the recipe for each host (`{VAR}` in paths may
differ per host).  `run_on_each` is the one-script-per-host fan-out the
verbs that look (through `look_on_each` and `merged_ledgers`), `unlock` and
`cache --hosts` share.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist.config.buildspec import PACKAGE_FORMATS
from fleetdist.config.env import expand, load_env
from fleetdist.config.hosts import limit_hosts, select_hosts
from fleetdist.config.loader import load_inventory, load_recipe
from fleetdist.config.names import check_version
from fleetdist.config.project import Project
from fleetdist.config.schema import Host, Inventory, Recipe
from fleetdist.errors import ConfigError, ConfirmError, HostError, TransportError, UsageError
from fleetdist.orchestrate.batches import (
    ALL_AT_ONCE,
    UNLIMITED,
    BatchPlan,
    FailureBudget,
    OnFailure,
)
from fleetdist.orchestrate.work import HostJob, parallel
from fleetdist.release.layout import ReleaseLayout, host_root
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import Context, Step
from fleetdist.report import ledger
from fleetdist.runbook.load import Around, load_around
from fleetdist.shipping.artifact import Artifact
from fleetdist.transport.base import Result, TransportFactory
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
    limit: tuple[str, ...] = ()  # --limit KEY=VALUE, see config.hosts.limit_hosts
    confirmed: bool = False  # --yes: a `confirm: true` inventory may be changed


@dataclass(frozen=True)
class DeployOptions:
    """Every rollout flag, parsed once (`parse`) and typed; the one place with defaults.

    The three doors build it from their flags, `--resume` from the flags the
    run journal kept (`flags`), and the rollout, the dry run and the checks
    before either read the same values.
    """

    batches: BatchPlan = ALL_AT_ONCE
    max_fail: FailureBudget = UNLIMITED
    on_failure: OnFailure = OnFailure.HALT
    parallel: int = 10
    max_connect: int = 10
    lock_wait: float = 0.0
    accept_new_host_keys: bool = False
    persist: float = 60.0
    artifact: Path | None = None
    run_id: str | None = None
    release: str | None = None  # for an `artifact` fleetdist did not build: its release id
    version: str | None = None  # ... or its version (id: version + content hash)

    @classmethod
    def parse(
        cls,
        *,
        canary: int = 0,
        batch: str | None = None,
        max_fail: str | None = None,
        on_failure: str = "halt",
        **rest: Any,
    ) -> DeployOptions:
        """From flag values: a bad one is a one-line usage error naming the flag (exit 2)."""
        try:
            mode = OnFailure(on_failure)
        except ValueError:
            raise UsageError(f"--on-failure: {on_failure!r} is not halt or rollback") from None
        opts = cls(BatchPlan.parse(canary, batch), FailureBudget.parse(max_fail), mode, **rest)
        for flag in ("parallel", "max_connect"):
            if getattr(opts, flag) < 1:
                raise UsageError(f"--{flag.replace('_', '-')}: must be at least 1")
        if not 0 <= opts.persist < float("inf"):
            raise UsageError("--persist: must be 0 or more seconds")
        return opts

    def flags(self) -> dict[str, Any]:
        """The rollout flags as given, for the run journal (`parse` reads them back)."""
        return {
            "canary": self.batches.canary,
            "batch": self.batches.spec,
            "parallel": self.parallel,
            "max_connect": self.max_connect,
            "max_fail": self.max_fail.spec,
            "on_failure": str(self.on_failure),
            "lock_wait": self.lock_wait,
            "release": self.release,
            "version": self.version,
        }


@dataclass(frozen=True)
class Loaded:
    """Configuration loaded once and validated; later code trusts it.

    `recipe.version` is as written: only the verbs that build resolve it.
    """

    recipe: Recipe
    inventory: Inventory
    env: dict[str, str]
    hosts: list[Host]
    around: Around = ((), ())  # the recipe's around_batch: (before, after) steps


def read_recipe(sel: Selection) -> Recipe:
    """The selected recipe with its version as written (it may still hold `{VAR}`)."""
    return load_recipe(sel.project.recipe_path(sel.recipe))


def resolve_version(recipe: Recipe, env: Mapping[str, str]) -> Recipe:
    """Resolve `{VAR}` in the version (process env, then env file) and check it.

    Only the verbs that build need this: `status`, `history`, `unlock` and
    `rollback` never do, so a build-only variable (`{GIT_SHA}`) need not be
    set in an emergency.
    """
    where = f"{recipe.source_file}: version"
    if recipe.version_from == "wheel":  # dynamic: the build backend's metadata says
        from fleetdist.builders.wheel import dynamic_version

        where = f"{recipe.source.path}/pyproject.toml: project.version (dynamic)"
        version = dynamic_version(recipe)
    elif recipe.version_from == "pyproject":
        version = recipe.version  # checked by the loader; braces are not placeholders here
    else:
        version = expand(recipe.version, ChainMap(dict(os.environ), dict(env)), where=where)
    return dataclasses.replace(recipe, version=check_version(version, where))


def resolve_recipe(sel: Selection, env: Mapping[str, str]) -> Recipe:
    """The selected recipe, ready to build."""
    return resolve_version(read_recipe(sel), env)


def load(sel: Selection, *, need_hosts: bool = True) -> Loaded:
    """Recipe (version as written: see `resolve_version`), env, inventory, selected hosts."""
    env, inventory = read_inventory(sel)
    recipe = read_recipe(sel)
    around = load_around(recipe.around_batch, recipe.source_file, "around_batch")
    names = selected(sel, inventory)
    if need_hosts and not names:
        raise ConfigError(f"{inventory.source}: no hosts selected")
    return Loaded(recipe, inventory, env, [inventory.hosts[n] for n in names], around)


def read_inventory(sel: Selection) -> tuple[dict[str, str], Inventory]:
    """The env stack and the inventory `-i` or `--env` picks (see `Project.inventory_path`)."""
    env = load_env(sel.env, sel.project.root)
    path = sel.project.inventory_path(sel.inventory, sel.env)
    return env, load_inventory(path, env, os.environ)


def selected(sel: Selection, inventory: Inventory) -> list[str]:
    """The hosts `-H`, `-x` and `--limit` select from `inventory`, in order."""
    names = select_hosts(
        sel.hosts,
        list(inventory.hosts),
        inventory.groups,
        exclude=sel.exclude,
        source=inventory.source,
    )
    return limit_hosts(names, inventory.hosts, sel.limit, inventory.source)


def check_confirmed(sel: Selection, inventory: Inventory, action: str) -> None:
    """Refuse to change a `confirm: true` inventory's hosts unless the run is confirmed.

    Called before anything is built, journaled or sent, so a refusal leaves no trace.
    """
    if inventory.confirm and not sel.confirmed:
        raise ConfirmError(
            f"{inventory.source}: confirm: true: pass --yes to {action} its hosts",
            Path(inventory.source).stem,
        )


def load_hosts(sel: Selection) -> tuple[Inventory, list[Host]]:
    """The inventory and the selected hosts, for verbs that need no recipe (`exec`)."""
    _, inventory = read_inventory(sel)
    names = selected(sel, inventory)
    if not names:
        raise ConfigError(f"{inventory.source}: no hosts selected")
    return inventory, [inventory.hosts[n] for n in names]


def expand_host_patterns(sel: Selection, patterns: Sequence[str]) -> list[str]:
    """`fleetdist hosts PATTERN...`: inventory-aware expansion (groups, globs, --limit)."""
    _, inventory = read_inventory(sel)
    names = select_hosts(patterns, list(inventory.hosts), inventory.groups, source=inventory.source)
    return limit_hosts(names, inventory.hosts, sel.limit, inventory.source)


def _lookup(loaded: Loaded, host: Host, env_name: str) -> Mapping[str, str]:
    """Where `{VAR}` in a recipe's per-host fields resolves, first match wins."""
    names = {"host": host.name, "app": loaded.recipe.app, "env": env_name}
    return ChainMap(names, host.vars, dict(os.environ), loaded.env)


def deploy_root_for(loaded: Loaded, host: Host, env_name: str) -> str:
    """The recipe's deploy_root for one host: `{VAR}` resolved, then checked."""
    where = f"{loaded.recipe.source_file}: deploy_root (host {host.name})"
    path = expand(loaded.recipe.deploy_root, _lookup(loaded, host, env_name), where=where)
    return check_deploy_root(path, where)


def check_artifact_fits(loaded: Loaded, artifact: Artifact, env_name: str) -> None:
    """Refuse, before any host is touched, an artifact the recipe's hosts cannot take.

    An OS package installs under the `/opt/<app>` its build fixed, so a
    deploy_root elsewhere would only fail on the hosts after `apt-get install`
    had already succeeded on every one of them.
    """
    if artifact.format not in PACKAGE_FORMATS:
        return
    from fleetdist.builders.ospkg import package_root  # the build stack: only for packages

    want = package_root(loaded.recipe.app)
    for host in loaded.hosts:
        root = deploy_root_for(loaded, host, env_name)
        if posixpath.normpath(root) != want:
            raise ConfigError(
                f"{loaded.recipe.source_file}: deploy_root (host {host.name}): {root!r}:"
                f" a .{artifact.format} package installs under {want}; set deploy_root: {want}"
            )


def check_deploy_root(path: str, where: str) -> str:
    """An absolute path without `..`: it must name the same place on every host, and on a
    local host it must stay under `local_root` (which `host_root` puts in front of it)."""
    if not posixpath.isabs(path):
        raise ConfigError(f"{where}: {path!r} is not an absolute path")
    if ".." in path.split("/"):
        raise ConfigError(f"{where}: {path!r} must not contain '..'")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ConfigError(f"{where}: {path!r} contains a control character")
    if posixpath.normpath(path) in ("/", "//"):
        raise ConfigError(f"{where}: {path!r} is the root directory; name the app's own folder")
    return path


def context_for(loaded: Loaded, host: Host, release_id: str, env_name: str) -> Context:
    """Resolve the recipe for one host: `{VAR}` in deploy_root and env values."""
    recipe = loaded.recipe
    lookup = _lookup(loaded, host, env_name)
    deploy_root = deploy_root_for(loaded, host, env_name)
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
        shared_dirs=recipe.shared.dirs,
        shared_files=recipe.shared.files,
        keep=recipe.keep,
    )


def jobs(sel: Selection, loaded: Loaded, release_id: str) -> list[HostJob]:
    return [HostJob(h, context_for(loaded, h, release_id, sel.env)) for h in loaded.hosts]


def lock_spec(run_id: str, wait: float) -> LockSpec:
    who = ledger.operator()
    return LockSpec(run_id=run_id, holder=f"{who} pid={os.getpid()} run={run_id}", wait=wait)


def transports(opts: DeployOptions, *, read_only: bool = False) -> TransportFactory:
    """The one transport factory of a run: shared known_hosts and handshake limit."""
    return transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys,
        max_connect=opts.max_connect,
        persist=opts.persist,
        read_only=read_only,
    )


def run_on_each(
    sel: Selection,
    opts: DeployOptions,
    host_jobs: Sequence[HostJob],
    step: Callable[[HostJob], Step],
    *,
    read_only: bool = True,
) -> list[tuple[HostJob, Result | TransportError]]:
    """Connect to each host, run its one script, close: the fan-out of the verbs that
    look (`read_only`), of `unlock` and of `cache --hosts`."""
    factory = transports(opts, read_only=read_only)

    def one(job: HostJob) -> tuple[HostJob, Result | TransportError]:
        try:
            transport = factory(job.host)
        except TransportError as exc:
            return job, exc
        try:
            return job, transport.run(step(job).for_host(job.host).text)
        except TransportError as exc:
            return job, exc
        finally:
            transport.close()

    return parallel(one, host_jobs, opts.parallel)


@dataclass(frozen=True)
class Seen:
    """What one host's read-only script printed, or why there is nothing to read."""

    job: HostJob
    stdout: str | None  # None: unreachable, or the script failed
    reachable: bool = True
    error: str | None = None


def look_on_each(
    sel: Selection,
    opts: DeployOptions,
    host_jobs: Sequence[HostJob],
    step: Callable[[HostJob], Step],
) -> list[Seen]:
    """`run_on_each` for the verbs that report per host (status, releases, plans): an
    unreachable host or a failed script is a row with its error, not an exception."""
    seen = []
    for job, result in run_on_each(sel, opts, host_jobs, step):
        if not isinstance(result, Result):
            seen.append(Seen(job, None, reachable=False, error=str(result)))
        elif not result.ok:
            seen.append(Seen(job, None, error=result.tail()))
        else:
            seen.append(Seen(job, result.stdout))
    return seen


def merged_ledgers(
    sel: Selection,
    opts: DeployOptions,
    host_jobs: Sequence[HostJob],
    read: Callable[[HostJob], Step],
) -> list[dict[str, Any]]:
    """Every host's ledger (`read` prints it), merged by time; an unreachable host, or
    one whose ledger cannot be read, is an error, as a history with a hole in it would
    mislead."""
    merged: list[dict[str, Any]] = []
    for job, result in run_on_each(sel, opts, host_jobs, read):
        if not isinstance(result, Result):
            raise result
        if not result.ok:
            raise HostError(f"host {job.host.name}: reading its ledger: {result.tail()}")
        merged += [{"host": job.host.name, **entry} for entry in ledger.parse(result.stdout)]
    return sorted(merged, key=lambda e: (str(e.get("time", "")), e["host"]))
