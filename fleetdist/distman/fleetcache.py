"""`fleetdist cache --hosts`: each host refreshes its own CACHE_ROOT from its DEPLOY_ROOT.

The contract of `fleetdist cache` (`distman.cache`), carried out by the host
(`dist_cache` in release/sh/dist.sh) so nothing crosses the network but the
script: only the versions the links use, files whose size and mtime match
skipped, the TTL gate, the epoch files, a dry run that says stale or fresh.
Each host's roots come from its own values (inventory vars first), checked
as a deploy root is; a root that would come from this machine's HOME is
refused.  The script holds the host's dist mutex, so it never copies while
a `dist --hosts` switch is under way there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.schema import Host
from fleetdist.distman import env, hostplan
from fleetdist.distman.cache import DEFAULT_TTL, STALE_EXIT, CacheArgs
from fleetdist.distman.files import IGNORABLE
from fleetdist.errors import ConfigError, ExitCode, UsageError
from fleetdist.orchestrate.work import HostJob
from fleetdist.release import distfacts, diststeps, steps
from fleetdist.release.layout import host_root
from fleetdist.session import check_deploy_root, run_on_each
from fleetdist.transport.base import Result

APP = "dist"


@dataclass
class CacheRow:
    """One host's cache run: `result` skipped, fresh, stale or "copied N"; or an error."""

    host: str
    src: str
    dst: str
    result: str | None = None
    reachable: bool = True
    error: str | None = None


def _roots(host: Host, args: CacheArgs, values: dict[str, str], raw: set[str]) -> tuple[str, str]:
    """(src, dst) on the host, as its transport sees them."""
    if not args.dst and "CACHE_ROOT" not in raw:
        raise ConfigError(
            f"host {host.name}: CACHE_ROOT is not set "
            "(set it in the host's inventory vars, the --env stack, distman.env or the environment)"
        )
    src = check_deploy_root(args.src or values["DEPLOY_ROOT"], f"host {host.name}: --src")
    dst = check_deploy_root(args.dst or values["CACHE_ROOT"], f"host {host.name}: --dst")
    src, dst = host_root(src, host.local_root), host_root(dst, host.local_root)
    if _within(src, dst) or _within(dst, src):
        raise ConfigError(
            f"host {host.name}: the cache {dst} and the deploy root {src} overlap "
            "(the copy would read what it writes): give them separate folders"
        )
    return src, dst


def _within(path: str, folder: str) -> bool:
    """`path` is `folder` or lies under it (both normalised, absolute)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def cache_hosts(args: CacheArgs, fleet: hostplan.FleetArgs) -> list[CacheRow]:
    """Run the cache refresh on every selected host, in parallel; a row per host."""
    for flag, given in (
        ("--delete", args.delete),
        ("-p/--prune", args.prune),
        ("--diff", args.diff),
    ):
        if given:
            raise UsageError(f"{flag}: not with --hosts (run fleetdist cache on the host)")
    chosen = hostplan.select(fleet, confirmed=True)  # a cache is not what is deployed
    stack = env.load_stack(Path.cwd())
    plans: dict[str, tuple[str, str, str, int]] = {}
    for host in chosen.hosts:
        values = hostplan.host_values(host, stack, chosen.env, os.environ)
        raw = {*stack, *chosen.env, *os.environ, *host.vars}
        root = host_root(
            check_deploy_root(values["DEPLOY_ROOT"], f"host {host.name}"), host.local_root
        )
        src, dst = _roots(host, args, values, raw)
        ttl = args.ttl if args.ttl is not None else _ttl(host, values)
        plans[host.name] = (root, src, dst, ttl)
    jobs = [
        HostJob(h, steps.Context(diststeps.state_layout(plans[h.name][0]), APP, "", host=h.name))
        for h in chosen.hosts
    ]

    def step(job: HostJob) -> steps.Step:
        root, src, dst, ttl = plans[job.host.name]
        return diststeps.cache(
            root,
            src,
            dst,
            ttl=ttl,
            force=args.force,
            dryrun=args.dryrun,
            ignorable=IGNORABLE,
            wait=fleet.options.lock_wait,
        )

    rows = []
    for job, result in run_on_each(chosen.sel, fleet.options, jobs, step, read_only=False):
        _, src, dst, _ = plans[job.host.name]
        row = CacheRow(job.host.name, src, dst)
        rows.append(row)
        if not isinstance(result, Result):
            row.reachable, row.error = False, str(result)
        elif not result.ok:
            row.error = f"host {job.host.name}: {result.tail()}"
        else:
            row.result = distfacts.parse_cache(result.stdout)
    return rows


def _ttl(host: Host, values: dict[str, str]) -> int:
    text = values.get("CACHE_TTL") or str(DEFAULT_TTL)
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"host {host.name}: CACHE_TTL: {text!r} is not a whole number") from None


def exit_code(rows: list[CacheRow], dryrun: bool) -> int:
    """1 a host failed, else 5 one was unreachable, else 10 a dry run found a stale cache."""
    if any(r.error and r.reachable for r in rows):
        return ExitCode.FAILED
    if any(not r.reachable for r in rows):
        return ExitCode.UNREACHABLE
    if dryrun and any(r.result == "stale" for r in rows):
        return STALE_EXIT
    return ExitCode.OK
