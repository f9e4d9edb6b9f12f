"""The `fleetdist` argument grammar: every verb, its flags and their help.

Kept apart from `cli` (which runs what is parsed) so the command line can be
read in one place; `doors` reuses `VERBS` to route `fab`'s usage errors.
A usage error raises `UsageError` (exit 2, one line) instead of argparse's
multi-line usage block.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path
from typing import NoReturn

from fleetdist import api
from fleetdist.distman import args as distman_args
from fleetdist.errors import UsageError

VERBS = (
    "build",
    "deploy",
    "plan",
    "rollback",
    "status",
    "history",
    "unlock",
    "disconnect",
    "hosts",
    "exec",
    "releases",
    "runs",
    "init",
    "import",
    "run",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-r", "--recipe", help="recipe name or path (default: the only one in recipes/)")
    _targets(p)
    p.add_argument("--lock-wait", type=float, metavar="SECONDS")


def _targets(p: argparse.ArgumentParser) -> None:
    """Which hosts, and how to reach them: every verb that touches hosts takes these."""
    p.add_argument(
        "-i", "--inventory", help="inventory name or path (default: inventories/ENV.yaml, or local)"
    )
    p.add_argument("--env", default="prod", help="envstack environment (default: prod)")
    p.add_argument(
        "-H",
        "--hosts",
        action="append",
        default=[],
        metavar="PATTERN",
        help="host patterns, globs or group names, e.g. web[01-99], web* (repeatable)",
    )
    p.add_argument("-x", "--exclude", action="append", default=[], metavar="PATTERN")
    _limit(p)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--project", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    p.add_argument("--parallel", type=int, help="concurrent host workers (default 10)")
    p.add_argument("--max-connect", type=int, help="concurrent SSH handshakes (default 10)")
    p.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust and record unknown host keys (changed keys are still refused)",
    )
    p.add_argument(
        "--persist",
        type=float,
        metavar="SECONDS",
        help="keep SSH connections open this long for the next run (default 60; 0: close at exit)",
    )


def _limit(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only hosts with this group or host var, e.g. role=web, group=db (repeatable)",
    )


def _yes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="confirm an inventory with confirm: true")


def _rollout_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--canary", type=int, metavar="N")
    p.add_argument("--batch", help="batch sizes: N, P%% or a list like 1,10%%,100%%")
    p.add_argument("--max-fail", help="failure budget for the whole rollout: N or P%%")
    p.add_argument("--on-failure", choices=[m.value for m in api.OnFailure])
    p.add_argument("--artifact", type=Path, help="deploy this built artifact instead of building")
    _foreign_flags(p, "for an --artifact fleetdist did not build: ")
    p.add_argument("--dry-run", action="store_true", help="print the scripts, run nothing")
    p.add_argument("--resume", metavar="RUN", help="finish an interrupted rollout")
    p.add_argument("--force-unlock", action="store_true", help="break held locks first (recorded)")


def _foreign_flags(p: argparse.ArgumentParser, prefix: str) -> None:
    p.add_argument("--release", metavar="ID", help=prefix + "its release id")
    p.add_argument(
        "--version", metavar="V", help=prefix + "its version (release id: V-<content hash>)"
    )


def _version() -> str:
    try:
        return importlib.metadata.version("fleetdist")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="fleetdist",
        description="Build, deploy and roll back apps across a fleet; run runbooks; "
        "distman's dist and cache.",
    )
    top.add_argument("--version", action="version", version=f"fleetdist {_version()}")
    sub = top.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="build the recipe's artifacts into dist/")
    _common(b)
    b.add_argument("--formats", help="comma list, e.g. tar.gz,zip")
    for name, helptext in (("deploy", "roll out a release"), ("plan", "deploy --dry-run")):
        d = sub.add_parser(name, help=helptext)
        _common(d)
        _rollout_flags(d)
        _yes(d)
    r = sub.add_parser("rollback", help="undo the last rollout of this app and env")
    _common(r)
    _yes(r)
    r.add_argument("--to", metavar="RELEASE", help="a release id to activate instead")
    r.add_argument(
        "--run", metavar="RUN", help="undo that rollout (or `last`) instead of the last one"
    )
    r.add_argument(
        "--step-back", action="store_true", help="move each host to its own previous release"
    )
    r.add_argument(
        "--allow-untested",
        action="store_true",
        help="activate a release that has not passed its tests on a host",
    )
    for name, helptext in (
        ("status", "current/previous per host"),
        ("history", "merged ledgers"),
        ("unlock", "break the lock on hosts (recorded)"),
        ("releases", "the releases each host keeps: current, previous, tested"),
    ):
        verb = sub.add_parser(name, help=helptext)
        _common(verb)
        if name in ("status", "history"):
            distman_args.add_view_flag(verb)
    _exec_parser(sub.add_parser("exec", help="run a command on each host"))
    _run_parser(sub.add_parser("run", help="run a runbook: steps on each host, batch by batch"))
    runs = sub.add_parser("runs", help="the runs recorded on this controller, newest first")
    runs.add_argument("--json", action="store_true", help="one JSON document on stdout")
    runs.add_argument("-n", "--count", type=int, default=20, help="how many (default 20)")
    runs.add_argument("--project", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    dc = sub.add_parser("disconnect", help="close the SSH connections --persist keeps open")
    dc.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ini = sub.add_parser("init", help="write a recipe, a local fleet and env files for an app")
    ini.add_argument("directory", type=Path, nargs="?", default=Path("."), metavar="DIR")
    ini.add_argument("--force", action="store_true", help="overwrite files that exist")
    ini.add_argument("--json", action="store_true", help="one JSON document on stdout")
    imp = sub.add_parser("import", help="check an archive fleetdist did not build, name it once")
    imp.add_argument("path", type=Path, metavar="PATH")
    imp.add_argument("-r", "--recipe", help="recipe name or path (default: the only one)")
    imp.add_argument("--json", action="store_true", help="one JSON document on stdout")
    imp.add_argument("--project", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    _foreign_flags(imp, "")
    h = sub.add_parser("hosts", help="expand host patterns")
    h.add_argument("--json", action="store_true", help="one JSON document on stdout")
    h.add_argument("-i", "--inventory")
    h.add_argument("--env", default="prod")
    h.add_argument("--project", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    _limit(h)
    h.add_argument("patterns", nargs="*")
    distman_args.add_parsers(sub)
    return top


def _exec_parser(e: argparse.ArgumentParser) -> None:
    """`fleetdist exec [flags] -- COMMAND...`: the command's words follow `--`."""
    _targets(e)
    e.add_argument("--canary", type=int, metavar="N")
    e.add_argument("--batch", help="batch sizes: N, P%% or a list like 1,10%%,100%%")
    e.add_argument("--max-fail", help="stop starting batches once more hosts failed: N or P%%")
    e.add_argument(
        "--shell", action="store_true", help="COMMAND is one shell string, run with sh -c"
    )
    e.add_argument("command", nargs="*", metavar="COMMAND", help="after --: the argv to run")


def _run_parser(p: argparse.ArgumentParser) -> None:
    """`fleetdist run RUNBOOK [flags]`: a runbook in runbooks/ (README, "Runbooks")."""
    p.add_argument("runbook", metavar="RUNBOOK", help="a runbook name in runbooks/, or a path")
    p.add_argument(
        "-r", "--recipe", help="the recipe of deploy steps that name none (default: the only one)"
    )
    _targets(p)
    for action in p._actions:
        if action.dest == "parallel":
            action.help = "hosts of a batch at once (default: the runbook's strategy.parallel)"
    p.add_argument("--lock-wait", type=float, metavar="SECONDS")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value for one of the runbook's declared params (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="print every step, run nothing")
    p.add_argument("--resume", metavar="RUN", help="finish that run of this runbook (or `last`)")
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm an inventory with confirm: true; pause steps go on without asking",
    )
