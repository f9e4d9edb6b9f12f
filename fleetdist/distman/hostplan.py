"""Per host: what `{VAR}` means there, where each target's link is, which version it gets.

Pure apart from reading the repo's git state through `engine.Context`: the
pipeline and its result are the controller's (one run for every host), but
destinations resolve per host (`DEPLOY_ROOT` from its inventory vars), and
version numbers are each host's own (`versions/NAME.N.commit7`, N counted
on that host), chosen by `decide` from the facts its probe printed.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence

from fleetdist.config.distman import DistError
from fleetdist.config.schema import Host
from fleetdist.distman import disk, engine, versions
from fleetdist.distman.engine import Context
from fleetdist.distman.env import defaults
from fleetdist.distman.targets import Target
from fleetdist.errors import ConfigError
from fleetdist.orchestrate.distrun import Decide, DistJob
from fleetdist.release.distlayout import DistLayout, Version
from fleetdist.release.diststeps import HostTarget, Placement, TargetFacts
from fleetdist.release.layout import host_root

ROOT_VARS = ("DEPLOY_ROOT", "ROOT")
_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(command: str, values: Mapping[str, str]) -> str:
    """An in-place test with each `{VAR}` the host has a value for filled in (quoted:
    a value is data, never shell); any other `{word}` stays as written (`awk '{print}'`)."""
    return _TOKEN.sub(lambda m: shlex.quote(values[m[1]]) if m[1] in values else m[0], command)


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
    """The host's DEPLOY_ROOT, checked, as its transport sees it (under local_root)."""
    root = values["DEPLOY_ROOT"]
    if not posixpath.isabs(root) or ".." in root.split("/") or posixpath.normpath(root) == "/":
        raise ConfigError(f"host {host.name}: DEPLOY_ROOT {root!r} is not an absolute folder")
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
    return Placement(ht, name, _info(t, ctx, name, layout), slot=slot).check()


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
