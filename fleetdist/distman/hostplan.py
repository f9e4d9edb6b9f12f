"""Per host: what `{VAR}` means there, where each target's link is, which version it gets.

Pure apart from reading the repo's git state through `engine.Context`: the
pipeline and its result are the controller's (one run for every host), but
destinations resolve per host (`DEPLOY_ROOT` from its inventory vars), and
version numbers are each host's own (`versions/NAME.N.commit7`, N counted
on that host), chosen by `decide` from the facts its probe printed.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.config.distman import DistError, DistFile
from fleetdist.config.env import load_env
from fleetdist.config.loader import load_inventory
from fleetdist.config.names import dist_destination_problem
from fleetdist.config.project import Project
from fleetdist.config.schema import Host
from fleetdist.distman import disk, engine, env, versions
from fleetdist.distman.engine import Context
from fleetdist.distman.env import defaults
from fleetdist.distman.targets import Request, Target, plan_targets
from fleetdist.errors import ConfigError
from fleetdist.orchestrate.distrun import Decide, DistJob
from fleetdist.release.distfacts import TargetFacts
from fleetdist.release.distlayout import DistLayout, Version
from fleetdist.release.diststeps import HostTarget, Placement
from fleetdist.release.layout import host_root
from fleetdist.session import (
    DeployOptions,
    Selection,
    check_confirmed,
    check_deploy_root,
    selected,
)

ROOT_VARS = ("DEPLOY_ROOT", "ROOT")
_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


_PLAIN = re.compile(r"[A-Za-z0-9._/:=@%+,-]*")  # the same text in any shell quoting


def fill(command: str, values: Mapping[str, str], where: str = "") -> str:
    """An in-place test with each `{VAR}` the host has a value for filled in (quoted:
    a value is data, never shell); any other `{word}` stays as written (`awk '{print}'`).

    Inside the author's own quotes a quoted value would close them (`"'$(x)'"` runs
    x), so there only plain text is filled in, and anything else is a ConfigError.
    """
    out, quote, i = [], "", 0
    while i < len(command):
        token = _TOKEN.match(command, i)
        if token and token[1] in values:
            out.append(_filled(command, token[1], values[token[1]], quote, where))
            i = token.end()
            continue
        c = command[i]
        if c == "\\" and quote != "'":  # escapes the next character, outside '...'
            out.append(command[i : i + 2])
            i += 2
            continue
        if c in "'\"" and quote in ("", c):
            quote = "" if quote else c
        out.append(c)
        i += 1
    return "".join(out)


def _filled(command: str, name: str, value: str, quote: str, where: str) -> str:
    if not quote:
        return shlex.quote(value)
    if _PLAIN.fullmatch(value):
        return value
    raise ConfigError(
        f"{where}test {command!r}: {{{name}}} is inside quotes and its value {value!r} is "
        "not plain text (letters, digits and ._/:=@%+,-): write it unquoted, fleetdist quotes it"
    )


class HostsKnow(Mapping[str, str]):
    """This machine's values for planning targets across hosts: a `{VAR}` only the hosts
    know stands for itself here, since this machine links nothing (each host's plan
    resolves it with that host's values, or fails naming the host)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.known = values

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return self.known.get(key, "{" + key + "}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.known.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


@dataclass(frozen=True)
class FleetArgs:
    """Which hosts, how to reach them, how to roll out: the flags `--hosts` adds."""

    project: Path
    hosts: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    limit: tuple[str, ...] = ()
    inventory: str | None = None
    env: str | None = None  # an envstack stack for the inventory and {VAR}; none by default
    options: DeployOptions = field(default_factory=DeployOptions)
    env_required: bool = True  # False (status, history): an --env without a stack is none


@dataclass(frozen=True)
class Selected:
    """The selected hosts, the --env values and the selection they came from."""

    sel: Selection
    hosts: list[Host]
    env: dict[str, str]


def select(fleet: FleetArgs, confirmed: bool = False) -> Selected:
    project = Project(fleet.project)
    stack = fleet.env and (fleet.env_required or _has_stack(project, fleet.env))
    values = load_env(fleet.env, project.root) if fleet.env and stack else {}
    path = project.inventory_path(fleet.inventory, fleet.env)
    inventory = load_inventory(path, values, os.environ)
    sel = Selection(
        project,
        None,
        str(path),
        fleet.env or "prod",
        fleet.hosts,
        fleet.exclude,
        fleet.limit,
        confirmed=confirmed,
    )
    names = selected(sel, inventory)
    if not names:
        raise ConfigError(f"{inventory.source}: no hosts selected")
    if fleet.env_required:  # a run that changes hosts; `status` only looks
        check_confirmed(sel, inventory, "dist to")
    return Selected(sel, [inventory.hosts[n] for n in names], values)


def _has_stack(project: Project, name: str) -> bool:
    dirs = (os.environ.get("ENVPATH") or str(project.root / "env")).split(os.pathsep)
    return any((Path(d) / f"{name}.env").is_file() for d in dirs if d)


@dataclass(frozen=True)
class HostPlan:
    """One host's deploy root (as its transport sees it), targets and in-place tests."""

    root: str
    targets: tuple[HostTarget, ...]
    tests: tuple[str, ...]


def plans(
    dist_file: DistFile, request: Request, ready: Sequence[Target], fleet: Selected, location: Path
) -> dict[str, HostPlan]:
    """Each host's deploy root, targets and tests, every path and name checked, before
    anything runs."""
    stack = env.load_stack(location)
    shown = {t.shown for t in ready}
    out = {}
    for host in fleet.hosts:
        values = host_values(host, stack, fleet.env, os.environ)
        root = deploy_root(host, values)
        try:
            found = plan_targets(dist_file, request, values, lambda _: None)
        except DistError as exc:
            raise ConfigError(f"host {host.name}: {exc}") from None
        mine = [t for t in found if t.shown in shown]
        check_destinations(host, dist_file, {t.name for t in mine}, values)
        targets = tuple(host_targets(host, ready, mine))
        where = f"host {host.name}: dist.json fleetdist.test: "
        tests = tuple(fill(command, values, where) for command in dist_file.tests)
        out[host.name] = HostPlan(root, targets, tests)
    return out


def check_destinations(
    host: Host, dist_file: DistFile, names: set[str], values: Mapping[str, str]
) -> None:
    """Each destination of the targets `names` as written, `{VAR}` filled with the host's
    values: `plan_targets` normalises it (a '..' vanishes), so this reads the text."""
    for spec in dist_file.targets:
        if spec.name in names:
            text = env.resolve(str(spec.destination), values, f"<dest> for {spec.name}")
            if problem := dist_destination_problem(text.replace("\\", "/")):
                raise ConfigError(f"host {host.name}: target {spec.name}: {problem}")


def host_values(
    host: Host, stack: Mapping[str, str], env: Mapping[str, str], process: Mapping[str, str]
) -> dict[str, str]:
    """`{VAR}` on `host`: its inventory vars, then the process environment, then the
    `--env` stack, then distman.env (`stack`), then distman's defaults.

    A deploy root that would come from the controller's own HOME (distman's
    default) is refused: it names a place on this machine, not on the host.
    """
    found = {**stack, **env, **process, **host.vars}
    if not any(k in found for k in ROOT_VARS):
        raise ConfigError(
            f"host {host.name}: DEPLOY_ROOT is not set "
            "(set it in the host's inventory vars, the --env stack, distman.env or the environment)"
        )
    return {**defaults(found), **found}


def deploy_root(host: Host, values: Mapping[str, str]) -> str:
    """The host's DEPLOY_ROOT, checked as a recipe's deploy_root is (absolute, no '..',
    no control characters, not '/'), as its transport sees it (under local_root)."""
    root = check_deploy_root(values["DEPLOY_ROOT"], f"host {host.name}: DEPLOY_ROOT")
    return host_root(root, host.local_root)


def host_targets(host: Host, planned: Sequence[Target], mine: Sequence[Target]) -> list[HostTarget]:
    """`mine` (the targets planned with this host's values) as the host sees them, in the
    order of `planned` (the controller's), whose payload slots they share."""
    where = f"host {host.name}"
    if [t.shown for t in mine] != [t.shown for t in planned]:
        raise ConfigError(f"{where}: its values select other sources than the controller's")
    out = []
    for t in mine:
        dest = host_root(t.layout.dest, host.local_root)
        out.append(HostTarget(t.name, t.shown, dest).check(where))
    return out


def decider(planned: Sequence[Target], ctx: Context) -> Decide:
    """The `Decide` of a dist: each target's version on a host, from that host's facts."""

    def decide(job: DistJob, facts: list[TargetFacts]) -> list[Placement]:
        return [
            _choose(t, ht, f, ctx, k)
            for k, (t, ht, f) in enumerate(zip(planned, job.targets, facts, strict=True))
        ]

    return decide


def _blocked(t: HostTarget, f: TargetFacts) -> None:
    if f.blocked:
        raise DistError(f"Target {t.name}: {t.dest} is not a symlink: move it away first")


def _choose(t: Target, ht: HostTarget, f: TargetFacts, ctx: Context, slot: int) -> Placement:
    """The commit's version if the host has it (`match: commit`), else a new number there."""
    _blocked(ht, f)
    layout = ht.layout
    found = sorted(v for v in (layout.parse(n) for n in f.versions) if v is not None)
    hit = versions.by_commit(found, ctx.git.short) if engine.by_commit(t, ctx) else None
    if hit is not None:
        return Placement(ht, hit.filename, _info(t, ctx, hit.filename, layout)).check()
    name = layout.version_name(versions.next_number(found), ctx.git.short, engine.dirty(t, ctx))
    older: tuple[tuple[str, str], ...] = ()
    if not engine.by_commit(t, ctx):  # `match: content` (or no clean commit): as a local dist
        window = reversed(versions.window(found, ctx.flags.max_versions))
        older = tuple((v.filename, _info(t, ctx, v.filename, layout)) for v in window)
    return Placement(ht, name, _info(t, ctx, name, layout), slot=slot, candidates=older).check()


def _info(t: Target, ctx: Context, filename: str, layout: DistLayout) -> str:
    v = layout.parse(filename)
    assert v is not None
    return disk.info_text(engine.info_fields(t, ctx, v))


def mover(
    planned: Sequence[Target], ctx: Context, *, number: int | None, commit: str | None
) -> Decide:
    """The `Decide` of `-n/-c/--reset`: the version each flag names on each host."""

    def decide(job: DistJob, facts: list[TargetFacts]) -> list[Placement]:
        out = []
        for t, ht, f in zip(planned, job.targets, facts, strict=True):
            _blocked(ht, f)
            layout = ht.layout
            found = sorted(v for v in (layout.parse(n) for n in f.versions) if v is not None)
            if not found:
                continue  # as distman: a target without versions is left alone
            v = _named(found, number, commit, ht)
            info = disk.info_text(engine.info_fields(t, ctx, v))
            commit_text = v.commit + ("-dirty" if v.dirty else "")
            out.append(Placement(ht, v.filename, info, commit=commit_text, recommit=True).check())
        if not out:
            raise DistError("No targets found to change version")
        return out

    return decide


def _named(found: list[Version], number: int | None, commit: str | None, t: HostTarget) -> Version:
    if number is None and commit is None:
        return found[-1]
    hit = (
        versions.by_commit(found, commit)
        if commit is not None
        else versions.by_number(found, number or 0)
    )
    if hit is None:
        what = f"commit {commit}" if commit is not None else f"version {number}"
        raise DistError(f"Target {what} not found for {t.shown}")
    return hit
