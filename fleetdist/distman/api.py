"""What `fleetdist dist` and `fleetdist cache` do, from parsed flags to an exit code.

The CLI only parses; this module reads dist.json and the environment, plans
the targets and hands them to `engine` (dist) or `moves` (-n/-c/--reset,
--delete, -s).  Exit codes are distman's: 0 done, 1 failed, 2 a bad `-n` or
`-c`, 10 a stale cache in a dry run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.distman import FILENAME, DistError, DistFile, read_dist_file
from fleetdist.distman import engine, env, moves
from fleetdist.distman.engine import Console, Context, DistFlags
from fleetdist.distman.gitinfo import MAIN_BRANCHES, GitInfo, behind, read_git
from fleetdist.distman.runlog import DistLog
from fleetdist.distman.targets import Request, plan_targets
from fleetdist.errors import ExitCode, FleetdistError

MIN_HASH = 4
TRUE = ("1", "true", "yes")


class DistUsageError(FleetdistError):
    """A bad `-n` or `-c` value: exit 2, as distman."""


@dataclass(frozen=True)
class DistArgs:
    """`fleetdist dist` flags, as distman's `dist` takes them."""

    location: str = "."
    target: tuple[str, ...] | None = None
    source: str | None = None
    dest: str | None = None
    show: bool = False
    commit: str | None = None
    number: str | None = None
    reset: bool = False
    delete: bool = False
    yes: bool = False
    all: bool = False
    ignore_missing: bool = False
    force: bool = False
    version_only: bool = False
    dryrun: bool = False
    verbose: int = 0


def ask_tty(yes: bool) -> Callable[[str], bool]:
    """A yes/no prompt: yes with -y; without a terminal, an error saying to pass -y."""

    def ask(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin or not sys.stdin.isatty():
            raise DistError(f"{question} (no terminal to answer on: pass -y to answer yes)")
        while True:
            answer = input(f"{question} (y/n): ").strip().lower()
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")

    return ask


def int_env(values: Mapping[str, str], name: str, default: int) -> int:
    text = values.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise DistError(f"{name}: {text!r} is not a whole number") from None


def choice(args: DistArgs) -> tuple[int | None, str | None]:
    """The validated `-n`/`-c` values (exit 2 for a bad one, as distman)."""
    if sum((args.commit is not None, args.number is not None, args.reset)) > 1:
        raise DistError("--commit,--number and --reset are mutually exclusive")
    number = None
    if args.number is not None:
        try:
            number = int(args.number)
        except ValueError:
            raise DistUsageError(f"Invalid version number: {args.number}") from None
    if args.commit is not None and len(args.commit) < MIN_HASH:
        raise DistUsageError(f"Hashes must be at least {MIN_HASH} characters")
    return number, args.commit


def _dist_file(args: DistArgs, location: Path) -> DistFile | None:
    path = location / FILENAME
    if args.source and args.dest and not path.exists():
        return None  # an ad hoc deploy
    return read_dist_file(path)


def dist(args: DistArgs) -> int:
    """Run `fleetdist dist` as distman's `dist` would; the exit code."""
    location = Path(args.location)
    if not location.is_dir():
        raise DistError(f"{args.location} is not a directory")
    choice(args)  # a bad -n/-c is refused before anything is read
    if args.dest and not args.source and not args.target:
        raise DistError("--dest requires --source or --target")
    dist_file = _dist_file(args, location)
    values = env.lookup(location)
    log = DistLog(values, dryrun=args.dryrun)
    try:
        return _dist(args, location, dist_file, values, log.say)
    except OSError as exc:  # a full disk, a read-only mount: one line, exit 1
        where = f": '{exc.filename}'" if exc.filename else ""
        log.error(f"{exc.strerror or exc}{where}")
        raise DistError(f"{exc.strerror or exc}{where}") from None
    except FleetdistError as exc:
        log.error(str(exc))
        raise
    finally:
        log.close()


def _dist(
    args: DistArgs,
    location: Path,
    dist_file: DistFile | None,
    values: Mapping[str, str],
    say: Callable[[str], None],
) -> int:
    number, commit = choice(args)
    request = Request(
        args.location,
        args.target,
        args.source,
        args.dest,
        args.ignore_missing or values.get("IGNORE_MISSING", "").lower() in TRUE,
        compat_pipeline=values.get("FLEETDIST_DIST_COMPAT_PIPELINE", "") in TRUE,
    )
    targets = plan_targets(dist_file, request, values, lambda line: say(f"WARNING: {line}"))
    if not targets:
        what = f"source '{args.source}'" if args.source else FILENAME
        raise DistError(f"No matching targets in {what}")
    git = read_git(location)
    ctx = Context(
        git,
        (dist_file.author if dist_file else None)
        or os.environ.get("USER", os.environ.get("USERNAME", "unknown")),
        values["DEPLOY_ROOT"],
        values,
        DistFlags(
            force=args.force,
            all_files=args.all,
            dryrun=args.dryrun,
            version_only=args.version_only,
            max_versions=int_env(values, "MAX_VERSIONS", 5),
            keep=int_env(values, "KEEP_VERSIONS", 0),
        ),
        Console(say, ask_tty(args.yes)),
    )
    if args.show:
        moves.show(targets, ctx, args.verbose)
    elif args.delete:
        moves.delete(targets, ctx, number=number, commit=commit)
    elif number is not None or commit is not None or args.reset:
        moves.move(targets, ctx, number=number, commit=commit)
    else:
        if args.verbose >= 2:
            moves.describe_repo(ctx)
        _warn_git(git, location, dist_file, say)
        if not args.force and (why := behind(location, git)):
            raise DistError(why)
        engine.dist(engine.check(targets, ctx), ctx)
    return ExitCode.OK


def _warn_git(
    git: GitInfo,
    location: Path,
    dist_file: DistFile | None,
    say: Callable[[str], None],
) -> None:
    if git.top is None:
        say("WARNING: Not in a git repository")
    elif not git.branch:
        say("WARNING: Detached HEAD or no active branch")
    elif git.branch not in MAIN_BRANCHES:
        say(f"WARNING: Not on a main branch: {git.branch}")
    if dist_file is not None and (location.resolve() / FILENAME) in git.dirty:
        say(f"WARNING: Uncommitted changes in {FILENAME}")
