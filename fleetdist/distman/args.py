"""The `dist` and `cache` subcommands' flags: distman's `dist` and `distcache`, unchanged.

`fleetdist.cli` adds these parsers and hands the parsed flags to `run`, so
the one-line errors and exit codes of every other verb apply here too.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from fleetdist.distman import api
from fleetdist.distman.cache import CacheArgs
from fleetdist.errors import ExitCode, UsageError
from fleetdist.report import jsonout
from fleetdist.report.console import print_table
from fleetdist.report.events import Reporter
from fleetdist.report.outcome import FleetOutcome
from fleetdist.session import DeployOptions

COMPAT = "distman 0.8.4"


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """`fleetdist dist [LOCATION]` and `fleetdist cache`, flag for flag as distman's."""
    # fmt: off
    d = sub.add_parser("dist",
                       help="link dist.json targets to new versions (here, or on --hosts)")
    d.add_argument("location", nargs="?", default=".", metavar="LOCATION",
                   help="source directory and optional dist file location (default is cwd)")
    d.add_argument("-t", "--target", nargs="+", action="extend", metavar="TARGET",
                   help="target name in the dist file (supports wildcards)")
    d.add_argument("--source", metavar="PATH",
                   help="source file or directory; matches dist.json source patterns when present")
    d.add_argument("--dest", metavar="PATH",
                   help="deployment destination override; requires --source or --target")
    d.add_argument("-s", "--show", action="store_true",
                   help="show current distributed versions only")
    d.add_argument("-c", "--commit", metavar="HASH",
                   help="change TARGET version number to point to commit HASH")
    d.add_argument("-n", "--number", metavar="NUMBER",
                   help="change TARGET version number to point to NUMBER")
    d.add_argument("--reset", action="store_true",
                   help="reset version for TARGET to point to latest version")
    d.add_argument("--delete", action="store_true",
                   help="delete dist TARGET from deployment folder")
    d.add_argument("-y", "--yes", action="store_true",
                   help="answer yes to all questions, skipping user interaction")
    d.add_argument("--all", action="store_true",
                   help="dist all files, including ignorable files")
    d.add_argument("--ignore-missing", action="store_true",
                   help="ignore missing files in dist file")
    d.add_argument("-f", "--force", action="store_true",
                   help="force action, e.g. disting uncommitted file changes")
    d.add_argument("--version-only", action="store_true",
                   help="distribute files only, do not create links")
    d.add_argument("-d", "--dryrun", action="store_true",
                   help="do a dry run, no actions will be performed")
    d.add_argument("-v", "--verbose", action="count", default=0,
                   help="output verbosity (-v for INFO, -vv for DEBUG)")
    d.add_argument("--version", action="version", version=f"fleetdist dist ({COMPAT})")
    _fleet_flags(d.add_argument_group(
        "across the fleet", "with --hosts: the same dist.json on each host over SSH, gated"
        " like a rollout (exit codes 0-5 as deploy)"))
    c = sub.add_parser("cache", help="copy the active dist versions into a cache (here or --hosts)")
    c.add_argument("--src", help="Source directory (default $DEPLOY_ROOT)")
    c.add_argument("--dst", help="Destination directory (default $CACHE_ROOT)")
    c.add_argument("--workers", type=int, help="Copy threads (default: 4x CPU, capped at 32)")
    c.add_argument("--delete", action="store_true", help="Delete the cache")
    c.add_argument("-p", "--prune", action="store_true", help="Prune the cache")
    c.add_argument("--diff", action="store_true", help="Show differences only (no copy)")
    c.add_argument("-t", "--ttl", type=int,
                   help="TTL (seconds) for remote epoch checks (0 = always check)")
    c.add_argument("-f", "--force", action="store_true",
                   help="Force cache even if cache appears fresh (overrides TTL and epoch check)")
    c.add_argument("-d", "--dryrun", action="store_true", help="Dry run (no changes made)")
    _host_flags(c.add_argument_group(
        "across the fleet", "with --hosts: each host refreshes its CACHE_ROOT from its"
        " DEPLOY_ROOT (both from its inventory vars)"))
    # fmt: on


def _fleet_flags(g: argparse._ArgumentGroup) -> None:
    """`--hosts` and the rollout flags `deploy` has, with the same meaning."""
    _host_flags(g)
    g.add_argument("--canary", type=int, metavar="N")
    g.add_argument("--batch", help="batch sizes: N, P%% or a list like 1,10%%,100%%")
    g.add_argument("--max-fail", help="failure budget for the whole run: N or P%%")
    g.add_argument(
        "--resume", metavar="RUN", help="finish an interrupted dist --hosts run (or last)"
    )


def _host_flags(g: argparse._ArgumentGroup) -> None:
    """Which hosts and how to reach them (`dist --hosts`, `cache --hosts`)."""
    g.add_argument(
        "-H",
        "--hosts",
        action="append",
        default=[],
        metavar="PATTERN",
        help="host patterns, globs or groups of the inventory (repeatable)",
    )
    g.add_argument("-x", "--exclude", action="append", default=[], metavar="PATTERN")
    g.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only hosts with this group or host var (repeatable)",
    )
    g.add_argument("-i", "--inventory", help="inventory name or path (default: inventories/local)")
    g.add_argument("--env", help="envstack environment for the inventory and {VAR} (default: none)")
    g.add_argument("--parallel", type=int, help="concurrent host workers (default 10)")
    g.add_argument("--max-connect", type=int, help="concurrent SSH handshakes (default 10)")
    g.add_argument("--lock-wait", type=float, metavar="SECONDS")
    g.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust and record unknown host keys (changed keys are still refused)",
    )
    g.add_argument(
        "--persist",
        type=float,
        metavar="SECONDS",
        help="keep SSH connections open this long (default 60)",
    )
    g.add_argument("--json", action="store_true", help="one JSON document on stdout")
    g.add_argument("--project", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)


_ROLLOUT = ("canary", "batch", "max_fail", "parallel", "max_connect", "lock_wait", "persist")


def across(args: argparse.Namespace) -> bool:
    """True when a `dist` command line asks for hosts (`--hosts` or `--resume`)."""
    return args.verb == "dist" and bool(args.hosts or args.resume) and not args.dryrun


def run_fleet(args: argparse.Namespace, reporter: Reporter) -> FleetOutcome:
    """`fleetdist dist ... --hosts` (or `--resume RUN`): the outcome, as deploy's."""
    from fleetdist.distman import fleet

    given = {f: getattr(args, f) for f in _ROLLOUT if getattr(args, f) is not None}
    options = DeployOptions.parse(accept_new_host_keys=args.accept_new_host_keys, **given)
    hosts = _fleet_args(args, options, changes=True)
    if args.resume:
        return fleet.resume(args.resume, hosts, reporter)
    return fleet.dist_hosts(_dist_args(args), hosts, reporter)


def _dist_args(args: argparse.Namespace) -> api.DistArgs:
    return api.DistArgs(
        location=args.location,
        target=tuple(args.target) if args.target else None,
        source=args.source,
        dest=args.dest,
        show=args.show,
        commit=args.commit,
        number=args.number,
        reset=args.reset,
        delete=args.delete,
        yes=args.yes,
        all=args.all,
        ignore_missing=args.ignore_missing,
        force=args.force,
        version_only=args.version_only,
        dryrun=args.dryrun,
        verbose=args.verbose,
    )


def add_view_flag(p: argparse.ArgumentParser) -> None:
    """`status --dist` and `history --dist`: dist.json targets instead of the recipe's app."""
    p.add_argument(
        "--dist",
        nargs="?",
        const=".",
        metavar="LOCATION",
        help="the targets of LOCATION's dist.json (default .) on each host,"
        " as fleetdist dist --hosts put them",
    )


def _fleet_args(args: argparse.Namespace, options: DeployOptions, *, changes: bool) -> Any:
    from fleetdist.distman import hostplan

    return hostplan.FleetArgs(
        args.project,
        tuple(args.hosts),
        tuple(args.exclude),
        tuple(args.limit),
        args.inventory,
        args.env,
        options,
        env_required=changes,
    )


def view(args: argparse.Namespace) -> int:
    """`status --dist` / `history --dist`: a table (or the JSON document); the exit code."""
    from fleetdist.distman import fleetview

    given = {f: getattr(args, f) for f in ("parallel", "max_connect", "persist")}
    opts = DeployOptions.parse(
        accept_new_host_keys=args.accept_new_host_keys,
        **{k: v for k, v in given.items() if v is not None},
    )
    where = Path(args.dist)
    fleet = _fleet_args(args, opts, changes=False)
    if args.verb == "history":
        entries = fleetview.history(where, fleet, opts)
        keys = ("time", "host", "action", "to", "result", "operator", "run")
        if not args.json:
            print_table(keys, [tuple(e.get(k) for k in keys) for e in entries])
        return _done(args, ExitCode.OK, entries=entries)
    rows = fleetview.status(where, fleet, opts)
    code = ExitCode.OK if all(r.reachable for r in rows) else ExitCode.UNREACHABLE
    if not args.json:
        print_table(
            ("host", "target", "link", "version", "versions", "error"),
            [
                (r.host, t["target"], t["link"], t["version"], t["versions"], r.error)
                for r in rows
                for t in (
                    r.targets or [{"target": None, "link": None, "version": None, "versions": None}]
                )
            ],
        )
    return _done(args, code, hosts=[dataclasses.asdict(r) for r in rows])


def _done(args: argparse.Namespace, code: int, **fields: Any) -> int:
    if args.json:
        jsonout.emit(jsonout.document(code, **fields))
    return code


def _plan_fleet(args: argparse.Namespace) -> int:
    """`dist -d --hosts`: per host, each target's version and the scripts a run sends."""
    from fleetdist.distman import fleetplan

    if args.resume:
        raise UsageError("--resume: not with -d/--dryrun")
    given = {f: getattr(args, f) for f in _ROLLOUT if getattr(args, f) is not None}
    options = DeployOptions.parse(accept_new_host_keys=args.accept_new_host_keys, **given)
    planned = fleetplan.plan_hosts(_dist_args(args), _fleet_args(args, options, changes=False))
    if not args.json:
        for host in planned:
            print(f"# {host['host']}: {host['root']} (facts {host['facts']})")
            if host["error"]:
                print(f"#   would fail: {host['error']}")
            for t in host["targets"]:
                how = "made" if t["make"] else "linked"
                print(f"#   {t['target']}: {t['link']} -> versions/{t['version']} ({how})")
            for step in host["steps"]:
                print(f"# {host['host']}: {step['name']}\n{step['script']}\n")
    code = ExitCode.FAILED if any(h["error"] for h in planned) else ExitCode.OK
    return _done(args, code, hosts=planned)


def _cache_fleet(args: argparse.Namespace, cache_args: CacheArgs) -> int:
    """`fleetdist cache --hosts`: a table (or the JSON document); the exit code."""
    from fleetdist.distman import fleetcache

    given = {f: getattr(args, f) for f in ("parallel", "max_connect", "persist", "lock_wait")}
    opts = DeployOptions.parse(
        accept_new_host_keys=args.accept_new_host_keys,
        **{k: v for k, v in given.items() if v is not None},
    )
    rows = fleetcache.cache_hosts(cache_args, _fleet_args(args, opts, changes=True))
    code = fleetcache.exit_code(rows, cache_args.dryrun)
    if not args.json:
        print_table(
            ("host", "source", "cache", "result", "error"),
            [(r.host, r.src, r.dst, r.result, r.error) for r in rows],
        )
    return _done(args, code, hosts=[dataclasses.asdict(r) for r in rows])


def _only_across(args: argparse.Namespace) -> None:
    """Fleet flags on a local dist would be ignored: say so instead (exit 2)."""
    names = (*_ROLLOUT, "inventory", "env")
    given = [f for f in names if getattr(args, f, None) is not None]
    given += [f for f in ("exclude", "limit", "json", "accept_new_host_keys") if getattr(args, f)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag}: only with --hosts (dist on this machine takes distman's flags)")


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed `dist` or `cache` command; the exit code."""
    if args.verb == "dist" and args.hosts:  # -d --hosts (a real run is `run_fleet`)
        return _plan_fleet(args)
    if args.verb == "dist":
        _only_across(args)
        return api.dist(_dist_args(args))
    from fleetdist.distman import cache

    if args.hosts:
        return _cache_fleet(args, _cache_args(args))
    _only_across(args)
    return cache.run(_cache_args(args))


def _cache_args(args: argparse.Namespace) -> CacheArgs:
    return CacheArgs(
        src=args.src,
        dst=args.dst,
        workers=args.workers,
        delete=args.delete,
        prune=args.prune,
        diff=args.diff,
        ttl=args.ttl,
        force=args.force,
        dryrun=args.dryrun,
    )
