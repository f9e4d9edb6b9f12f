"""The `dist` and `cache` subcommands' flags: distman's `dist` and `distcache`, unchanged.

`fleetdist.cli` adds these parsers and hands the parsed flags to `run`, so
the one-line errors and exit codes of every other verb apply here too.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleetdist.distman import api

COMPAT = "distman 0.8.4"


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """`fleetdist dist [LOCATION]` and `fleetdist cache`, flag for flag as distman's."""
    # fmt: off
    d = sub.add_parser("dist", help="distribute dist.json targets to versioned destinations")
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
    c = sub.add_parser("cache", help="copy the active dist versions into a local cache")
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
    # fmt: on


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed `dist` or `cache` command; the exit code."""
    if args.verb == "dist":
        return api.dist(
            api.DistArgs(
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
        )
    from fleetdist.distman import cache

    return cache.run(
        cache.CacheArgs(
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
    )
