"""Configuration loaded once per verb, and the per-host context every verb builds on.

`load` reads recipe, env stack and inventory into typed objects and selects
the hosts; `jobs` resolves the recipe for each host (`{VAR}` in paths may
differ per host).  `run_on_each` is the one-script-per-host fan-out the
read-only verbs share.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.buildspec import PACKAGE_FORMATS
from fleetdist.config.env import expand, load_env
from fleetdist.config.hosts import select_hosts
from fleetdist.config.loader import load_inventory, load_recipe
from fleetdist.config.names import check_version
from fleetdist.config.project import Project
from fleetdist.config.schema import Host, Inventory, Recipe
from fleetdist.errors import ConfigError, TransportError
from fleetdist.orchestrate.work import HostJob, parallel
from fleetdist.release.layout import ReleaseLayout, host_root
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import Context
from fleetdist.report import ledger
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
    persist: float = 60.0
    artifact: Path | None = None
    run_id: str | None = None
    release: str | None = None  # for an `artifact` fleetdist did not build: its release id
    version: str | None = None  # ... or its version (id: version + content hash)


@dataclass(frozen=True)
class Loaded:
    """Configuration loaded once and validated; later code trusts it.

    `recipe.version` is as written: only the verbs that build resolve it.
    """

    recipe: Recipe
    inventory: Inventory
    env: dict[str, str]
    hosts: list[Host]


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
    env = load_env(sel.env, sel.project.root)
    recipe = read_recipe(sel)
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
        keep=recipe.keep,
    )


def jobs(sel: Selection, loaded: Loaded, release_id: str) -> list[HostJob]:
    return [HostJob(h, context_for(loaded, h, release_id, sel.env)) for h in loaded.hosts]


def lock_spec(run_id: str, wait: float) -> LockSpec:
    who = ledger.operator()
    return LockSpec(run_id=run_id, holder=f"{who} pid={os.getpid()} run={run_id}", wait=wait)


def transports(opts: DeployOptions) -> TransportFactory:
    """The one transport factory of a run: shared known_hosts and handshake limit."""
    return transport_factory(
        accept_new_host_keys=opts.accept_new_host_keys,
        max_connect=opts.max_connect,
        persist=opts.persist,
    )


def run_on_each(
    sel: Selection,
    opts: DeployOptions,
    host_jobs: Sequence[HostJob],
    script: Callable[[HostJob], str],
) -> list[tuple[HostJob, Result | TransportError]]:
    """Connect to each host, run its one script, close: the read-only verbs' fan-out."""
    factory = transports(opts)

    def one(job: HostJob) -> tuple[HostJob, Result | TransportError]:
        try:
            transport = factory(job.host)
        except TransportError as exc:
            return job, exc
        try:
            return job, transport.run(script(job))
        except TransportError as exc:
            return job, exc
        finally:
            transport.close()

    return parallel(one, host_jobs, opts.parallel)
