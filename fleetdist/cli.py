"""`fleetdist` command line: parse flags, call `fleetdist.api`, turn results into exit codes.

Exit codes: 0 all hosts on the target; 1 some hosts failed within the
budget; 2 usage or configuration error; 3 aborted (budget exceeded or canary
failed); 4 lock held elsewhere; 5 hosts unreachable; 130 interrupted.

Every error is one line on stderr, usage errors included (argparse's own
multi-line usage block is not printed); with `--json`, stdout holds exactly
one JSON document on every path (see `report.jsonout`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from fleetdist import api
from fleetdist.cliargs import parser
from fleetdist.config.project import Project
from fleetdist.distman import args as distman_args
from fleetdist.errors import ConfirmError, ExitCode, FleetdistError, UsageError
from fleetdist.report import jsonout
from fleetdist.report.adhoc import OutputPrinter, print_exec_recap
from fleetdist.report.console import ConsoleReporter, print_recap, print_table, reporter_for
from fleetdist.report.lists import print_releases, print_runs
from fleetdist.report.outcome import FleetOutcome
from fleetdist.runbook.show import print_plan
from fleetdist.runbook.show import print_recap as print_runbook_recap

INTERRUPTED = 130
INTERRUPTED_MESSAGE = "interrupted; hosts keep their current release"


def _selection(args: argparse.Namespace) -> api.Selection:
    return api.Selection(
        Project(args.project),
        getattr(args, "recipe", None),
        args.inventory,
        args.env,
        tuple(getattr(args, "hosts", ())),
        tuple(getattr(args, "exclude", ())),
        tuple(getattr(args, "limit", ())),
        confirmed=getattr(args, "yes", False),
    )


_OPTION_FLAGS = (
    "canary",
    "batch",
    "parallel",
    "max_connect",
    "max_fail",
    "on_failure",
    "lock_wait",
    "accept_new_host_keys",
    "persist",
    "artifact",
    "release",
    "version",
)


def _options(args: argparse.Namespace) -> api.DeployOptions:
    """The flags given (absent ones keep `DeployOptions`' defaults), parsed once."""
    given = {f: getattr(args, f) for f in _OPTION_FLAGS if getattr(args, f, None) is not None}
    return api.DeployOptions.parse(**given)


def _fleet(args: argparse.Namespace, fleet: FleetOutcome) -> int:
    if args.json:
        jsonout.emit(jsonout.document(fleet.exit_code(), fleet.to_json()))
    else:
        print_recap(fleet)
    return fleet.exit_code()


def _done(args: argparse.Namespace, code: int = ExitCode.OK, **fields: Any) -> int:
    """Print a read-only verb's JSON document (with --json) and return its exit code."""
    if args.json:
        jsonout.emit(jsonout.document(code, **fields))
    return code


def run(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    if getattr(args, "dist", None) is not None:  # status/history --dist: dist targets
        return distman_args.view(args)
    if distman_args.across(args):  # dist --hosts: a rollout, reported as deploy's
        return _fleet(args, distman_args.run_fleet(args, reporter))
    if args.verb in ("dist", "cache"):
        return distman_args.run(args)
    if args.verb == "disconnect":
        closed = api.disconnect()
        if not args.json:
            print("closed the kept connections" if closed else "no connections were kept")
        return _done(args, closed=closed)
    if args.verb == "runs":
        found = api.runs(Project(args.project), args.count)
        if not args.json:
            print_runs(found)
        return _done(args, runs=found)
    if args.verb == "hosts":
        names = api.expand_host_patterns(_selection(args), args.patterns)
        if not args.json:
            for name in names:
                print(name)
        return _done(args, hosts=names)
    if args.verb == "init":
        return _init(args)
    if args.verb == "import":
        sel = api.Selection(Project(args.project), args.recipe)
        art = api.import_archive(sel, args.path, version=args.version, release=args.release)
        if not args.json:
            print(f"{art.path}  {art.release_id}  {art.sha256}")
        return _done(args, artifacts=[art.to_json()])
    sel, opts = _selection(args), _options(args)
    if args.verb == "exec":
        return _exec(args, sel, opts, reporter)
    if args.verb == "run":
        return _runbook(args, sel, opts, reporter)
    if args.verb == "releases":
        return _releases(args, api.releases(sel, opts))
    if args.verb == "build":
        formats = [f.strip() for f in (args.formats or "").split(",") if f.strip()]
        artifacts = api.build(sel, formats)
        if not args.json:
            for a in artifacts:
                print(f"{a.path}  {a.release_id}  {a.sha256}")
        return _done(args, artifacts=[a.to_json() for a in artifacts])
    if args.verb in ("deploy", "plan"):
        if args.verb == "plan" or args.dry_run:
            planned = api.plan(sel, opts)
            if not args.json:
                for host in planned:
                    for step in host["steps"]:
                        print(f"# {host['host']}: {step['name']}\n{step['script']}\n")
            return _done(args, hosts=planned)
        if args.force_unlock:
            api.unlock(sel, opts)
        if args.resume:
            return _fleet(args, api.resume(sel, args.resume, opts, reporter))
        return _fleet(args, api.deploy(sel, opts, reporter))
    if args.verb == "rollback":
        outcome = api.rollback(
            sel,
            opts,
            to=args.to,
            run=args.run,
            step_back=args.step_back,
            allow_untested=args.allow_untested,
            reporter=reporter,
        )
        return _fleet(args, outcome)
    if args.verb == "unlock":
        return _fleet(args, api.unlock(sel, opts))
    if args.verb == "status":
        return _status(args, api.status(sel, opts))
    entries = api.history(sel, opts)
    if not args.json:
        keys = ("time", "host", "action", "from", "to", "result", "operator", "run")
        print_table(keys, [tuple(e.get(k) for k in keys) for e in entries])
    return _done(args, entries=entries)


def _init(args: argparse.Namespace) -> int:
    from fleetdist.scaffold import init  # reads the app's files only: no config, no hosts

    done = init(args.directory, force=args.force)
    if not args.json:
        for path in done.written:
            print(f"wrote {path}")
        for path in done.kept:
            print(f"kept  {path} (exists; --force overwrites it)")
        print("next:\n" + "\n".join(f"  {step}" for step in done.next_steps))
    return _done(
        args,
        written=[str(p) for p in done.written],
        kept=[str(p) for p in done.kept],
        next=done.next_steps,
    )


def _status(args: argparse.Namespace, rows: list[api.HostStatus]) -> int:
    code = ExitCode.OK if all(r.reachable for r in rows) else ExitCode.UNREACHABLE
    if not args.json:
        print_table(
            ("host", "app", "current", "previous", "lock", "drift", "error"),
            [
                (r.host, r.app, r.current, r.previous, r.lock, "DRIFT" if r.drift else "", r.error)
                for r in rows
            ],
        )
    return _done(args, code, hosts=[dataclasses.asdict(r) for r in rows])


def _exec(
    args: argparse.Namespace, sel: api.Selection, opts: api.DeployOptions, console: ConsoleReporter
) -> int:
    """Stream each host's lines as they come, then the recap (stderr) or the JSON document."""
    printer = OutputPrinter(to_stderr=args.json, muted=lambda: console.muted)
    outcome = api.exec_command(sel, args.command, opts, shell=args.shell, reporter=printer)
    if args.json:
        jsonout.emit(jsonout.document(outcome.exit_code(), outcome.to_json()))
    else:
        print_exec_recap(outcome)
    return outcome.exit_code()


def _runbook(
    args: argparse.Namespace, sel: api.Selection, opts: api.DeployOptions, reporter: ConsoleReporter
) -> int:
    """`run RUNBOOK`: the dry run's steps, or the run's recap (or their JSON documents)."""
    req = api.RunRequest(args.runbook, tuple(args.param), args.resume, args.parallel)
    if args.dry_run:
        planned = api.plan_runbook(sel, req, opts)
        if not args.json:
            print_plan(planned)
        return _done(args, **planned)
    outcome = api.run_runbook(sel, req, opts, reporter)
    if args.json:
        jsonout.emit(jsonout.document(outcome.exit_code(), outcome.to_json()))
    else:
        print_runbook_recap(outcome)
    return outcome.exit_code()


def _releases(args: argparse.Namespace, rows: list[api.HostReleases]) -> int:
    hosts = [r.to_json() for r in rows]
    if not args.json:
        print_releases(hosts)
    return _done(args, api.releases_exit_code(rows), hosts=hosts)


def _confirming(args: argparse.Namespace, reporter: ConsoleReporter) -> int:
    """`run`; if the inventory wants confirmation and a person is at the terminal,
    ask them to type the inventory's name, and run again confirmed if they do.

    The core refuses before anything is built, journaled or sent, so asking
    after the refusal costs one more read of the configuration, nothing else.
    """
    try:
        return run(args, reporter)
    except ConfirmError as exc:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise
        print(f"{exc}; or type {exc.word!r} to go on: ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip() != exc.word:
            raise ConfirmError(f"{exc.word!r} was not typed: nothing was done", exc.word) from None
        args.yes = True
        return run(args, reporter)


def wants_json(argv: Sequence[str]) -> bool:
    """`--json` (or an abbreviation argparse would take for it) before any `--`."""
    for arg in argv:
        if arg == "--":
            return False
        if len(arg) > 3 and "--json".startswith(arg):
            return True
    return False


def fail(argv: Sequence[str], message: str, kind: str, code: int) -> int:
    """Report an error the one way: a line on stderr, and with --json the error document."""
    print(f"fleetdist: error: {message}", file=sys.stderr)
    if wants_json(argv):
        jsonout.emit(jsonout.error_document(message, kind, code))
    return code


def usage_error(argv: Sequence[str]) -> str | None:
    """The message fleetdist's own parser gives for `argv`, or None if it accepts it.

    The `fab` and `inv` doors ask this when their parser refuses a flag, so a
    bad flag reads the same whichever door it came through.
    """
    try:
        parser().parse_args(list(argv))
    except UsageError as exc:
        return str(exc)
    except SystemExit:  # --help
        return None
    return None


@contextmanager
def _interrupts(reporter: ConsoleReporter) -> Iterator[None]:
    """Ctrl-C stops the console at once, then unwinds the run as KeyboardInterrupt.

    Workers still report while the run unwinds (the journal and the run log
    keep recording), but nothing more reaches the screen than the one line
    `main` prints.
    """

    def stop(signum: int, frame: object) -> None:
        reporter.mute()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        yield
    finally:
        reporter.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; never raises for expected failures, returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
    except UsageError as exc:
        return fail(argv, str(exc), "UsageError", ExitCode.USAGE)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    reporter = reporter_for(sys.stderr)
    try:
        with _interrupts(reporter):
            return _confirming(args, reporter)
    except FleetdistError as exc:
        return fail(argv, str(exc), type(exc).__name__, exc.exit_code)
    except KeyboardInterrupt:
        return fail(argv, INTERRUPTED_MESSAGE, "Interrupted", INTERRUPTED)


def leave(code: int) -> NoReturn:
    """Exit with `code`; after Ctrl-C, without waiting for worker threads still blocked on
    hosts (joining them at exit would hang, and a second Ctrl-C there prints a traceback)."""
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def entrypoint() -> None:
    leave(main())


if __name__ == "__main__":
    entrypoint()
