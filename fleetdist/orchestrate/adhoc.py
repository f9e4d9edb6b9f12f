"""Ad-hoc commands: one already-quoted command on many hosts, batch by batch.

The command is a `release.command.Sh` built by `cmd` (an argv, each word
quoted) or `user_shell` (one shell string, under `sh -c`), so what a host
runs is exactly what the controller quoted.  Batches come from the same
`BatchPlan` as a rollout (`--canary`, `--batch`), hosts within a batch run
in parallel, and `--max-fail` is one budget for the whole run: once more
hosts failed than it allows, no further batch starts.  A worker never lets
an exception escape: everything ends up in the host's `CommandResult`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdist.config.schema import Host
from fleetdist.errors import FleetdistError, TransportError, UsageError
from fleetdist.orchestrate.batches import ALL_AT_ONCE, UNLIMITED, BatchPlan, FailureBudget
from fleetdist.orchestrate.work import parallel
from fleetdist.release.command import Sh, as_user, cmd, user_shell
from fleetdist.report.adhoc import CommandResult, ExecOutcome
from fleetdist.report.events import Event, Reporter
from fleetdist.report.outcome import Status
from fleetdist.transport.base import TransportFactory


def command_of(words: Sequence[str], *, shell: bool = False) -> Sh:
    """The command the hosts run: `words` as an argv, each word quoted (so `$(...)`,
    quotes, spaces and a leading `-` arrive as written), or with `shell` the one
    word given, as a shell string under `sh -c` (pipes, globs, `&&`).

    The first word may not start with `-`: the host runs the command as
    `$SHELL -c COMMAND`, which would take it for an option of the shell."""
    if not words:
        raise UsageError("exec: give the command after --, e.g. fleetdist exec -- uptime")
    if shell and len(words) != 1:
        raise UsageError(
            f"--shell: pass one shell string, e.g. --shell -- 'a | b' (got {len(words)})"
        )
    if not words[0].strip():
        raise UsageError("exec: the command is empty")
    if words[0].lstrip().startswith("-"):
        # `sh -c -n` would read it as the shell's own option, on the host and here
        raise UsageError(f"exec: the command must not start with '-' (got {words[0]!r})")
    return user_shell(words[0]) if shell else cmd(*words)


@dataclass(frozen=True)
class ExecPlan:
    """How the command fans out: workers per batch, the batches, the failure budget."""

    parallel: int = 10
    batches: BatchPlan = ALL_AT_ONCE
    max_fail: FailureBudget = UNLIMITED


def run_command(
    hosts: Sequence[Host],
    command: Sh,
    *,
    factory: TransportFactory,
    reporter: Reporter,
    plan: ExecPlan = ExecPlan(),
) -> ExecOutcome:
    """Run `command` on every host; the outcome says what each returned."""
    by_name = {h.name: h for h in hosts}
    outcome = ExecOutcome(command.shown, {n: CommandResult(n) for n in by_name})
    allowed = plan.max_fail.allowed(len(by_name))
    reporter(Event("run_started", data={"hosts": list(by_name), "phase": "exec"}))
    for index, batch in enumerate(plan.batches.split(list(by_name))):
        reporter(Event("batch_started", data={"index": index, "hosts": batch, "verb": "run"}))
        done = parallel(
            lambda n: _one(by_name[n], command, factory, reporter), batch, plan.parallel
        )
        outcome.hosts.update((r.host, r) for r in done)
        failed = sum(
            r.status in (Status.FAILED, Status.UNREACHABLE) for r in outcome.hosts.values()
        )
        if allowed is not None and failed > allowed:
            outcome.aborted = f"{failed} host(s) failed, more than --max-fail {plan.max_fail.spec}"
            reporter(Event("aborted", message=outcome.aborted))
            break
    reporter(Event("run_finished", data=outcome.to_json()))
    return outcome


def _one(host: Host, command: Sh, factory: TransportFactory, reporter: Reporter) -> CommandResult:
    """Run the command on one host, streaming its lines; never raises."""
    result = CommandResult(host.name)
    started = time.monotonic()

    def on_line(stream: str, line: str) -> None:
        reporter(Event("output", host.name, message=line, data={"stream": stream}))

    try:
        transport = factory(host)
        try:
            sent = as_user(command, host.become_user) if host.become else command
            ran = transport.run(sent.text, on_line=on_line)
        finally:
            transport.close()
    except TransportError as exc:
        result.status, result.error = Status.UNREACHABLE, str(exc)
    except FleetdistError as exc:
        result.status, result.error = Status.FAILED, str(exc)
    else:
        result.exit_code, result.stdout, result.stderr = ran.exit_code, ran.stdout, ran.stderr
        result.status = Status.OK if ran.ok else Status.FAILED
    result.seconds = round(time.monotonic() - started, 3)
    reporter(Event("host_done", host.name, data={"status": result.status}))
    return result
