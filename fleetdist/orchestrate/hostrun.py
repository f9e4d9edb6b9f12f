"""What every rollout does with one host: send a step, read its result, record it.

`HostRun` holds the per-host mechanics `Rollout` (deploy, rollback) is built
from: sending a `Step` (its upload streamed when the host asks, through
`become` if the inventory says so), turning exit codes and protocol lines
into the host's outcome and events, guarding a worker so no exception
escapes, and the ledger lines the controller must write itself.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable

from fleetdist.errors import FleetdistError, TransportError
from fleetdist.orchestrate import plan
from fleetdist.orchestrate.work import HostJob, Live, RolloutOptions, StepFailed, parallel
from fleetdist.release import steps
from fleetdist.release.command import SUDO_NEEDS_PASSWORD
from fleetdist.release.facts import BECAME
from fleetdist.release.lease import LOCK_HELD, LockSpec
from fleetdist.report import ledger
from fleetdist.report.events import Event, Reporter
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.transport.base import Result, Stdin, TransportFactory, is_protocol

# What a host is doing once its prepare script printed each protocol line (live view only).
_UNDER_WAY = {
    steps.SEND: "uploading",
    steps.RECEIVED: "unpacking",
    steps.STAGED: "testing",
    steps.UNCHANGED: "unchanged",
}


def check(live: Live, result: Result) -> None:
    """Raise StepFailed for a non-zero exit, blaming the lease if the script said so."""
    if result.exit_code == LOCK_HELD:
        live.step = "lock"
    if not result.ok:
        raise StepFailed(result.tail() or f"exit code {result.exit_code}")


class HostRun:
    """The per-host half of a rollout; see `runner.Rollout` for the fleet half."""

    def __init__(
        self,
        *,
        fleet: FleetOutcome,
        factory: TransportFactory,
        reporter: Reporter,
        options: RolloutOptions,
    ) -> None:
        self.fleet, self.factory, self.emit, self.options = fleet, factory, reporter, options

    def _stage(self, live: Live, stage: str, **data: object) -> None:
        live.outcome.stage = stage
        self.emit(Event("stage", live.job.host.name, stage, data=dict(data)))

    def _send(self, live: Live, step: steps.Step) -> Result:
        """Run one step on the host, streaming its upload (if any) once the host asks.

        Announces it first (a `step` event carrying the Step), so what ran can
        be compared with what `--dry-run` printed.
        """
        assert live.transport is not None
        host = live.job.host
        step = step.for_host(host)
        self.emit(Event("step", host.name, step.name, data={"step": step}))
        source = step.upload.source if step.upload else None
        feed = Stdin(source, after=steps.SEND if source else None, head=step.stdin_head)
        on_line = functools.partial(self._progress, live)
        result = live.transport.run(step.text, stdin=feed, on_line=on_line)
        if host.become and BECAME not in result.stdout.splitlines():
            live.step = "become"
            if SUDO_NEEDS_PASSWORD in result.stderr:
                raise StepFailed(
                    f"sudo wants a password to become {host.become_user}, and fleetdist runs "
                    f"`sudo -n`: give {host.user or 'the SSH user'} passwordless sudo there"
                )
            raise StepFailed(f"sudo did not run the script: {result.tail()}")
        return result

    def _leased(self, live: Live, attempt: Callable[[LockSpec], Result]) -> Result:
        """Run a script that takes the lease; if the host names a holder this controller
        proves dead (`options.stale`), say so and run it once more taking that lease over.
        A lease still held after that fails the host at step "lock"."""
        result = attempt(self.options.lock)
        stale = self.options.stale(result.stderr) if result.exit_code == LOCK_HELD else None
        if stale:
            self.emit(Event("stage", live.job.host.name, "takeover", f"stale lease of run {stale}"))
            result = attempt(dataclasses.replace(self.options.lock, takeover=stale))
        if result.exit_code == LOCK_HELD:
            live.step = "lock"
            raise StepFailed(result.tail())
        return result

    def _run(self, live: Live, step: steps.Step, allow: tuple[int, ...] = ()) -> Result:
        """Run one step; a non-zero exit (other than those in `allow`) raises StepFailed."""
        live.step = step.name
        result = self._send(live, step)
        if result.exit_code not in allow:
            check(live, result)
        return result

    def _progress(self, live: Live, stream: str, line: str) -> None:
        """A line a host printed just now: a protocol line says what the host is doing
        (a `progress` event), any other is output (an `output` event, for the live view
        and the run log).  Only progress: facts are read from the Result afterwards."""
        host = live.job.host.name
        if not is_protocol(line):
            data = {"stream": stream, "step": live.step}
            self.emit(Event("output", host, message=line, data=data))
        elif stream == "stdout" and line in _UNDER_WAY:
            self.emit(Event("progress", host, _UNDER_WAY[line]))

    def _fail(self, live: Live, step: str, error: str, status: Status = Status.FAILED) -> None:
        o = live.outcome
        o.status, o.failed_step, o.error = status, step, error
        self.emit(Event("stage", live.job.host.name, "failed", error, {"step": step}))

    def _ledger_fields(self, live: Live, result: str) -> dict[str, str]:
        ctx = live.job.ctx
        return dict(
            app=ctx.app,
            env=ctx.env_name,
            run=self.fleet.run_id,
            result=result,
            who=self.options.operator,
        )

    def _ledger_line(
        self, live: Live, action: str, result: str, to: str | None, **extra: str
    ) -> str:
        """A complete ledger line, for what the host's own scripts could not record."""
        fields = self._ledger_fields(live, result)
        return ledger.record(
            action, from_release=live.facts.current, to_release=to, **fields, **extra
        )

    def _ledgers(self, live: Live, action: str) -> steps.Ledgers:
        """The lines an activating script appends: ok, reverted, and `recover`'s."""
        return plan.host_ledgers(live.job, self.options, self.fleet.run_id, action)

    def _guard(self, live: Live, work: Callable[[], None]) -> bool:
        """Run `work`; turn every failure into the host's outcome.  True if it succeeded."""
        name = live.job.host.name
        try:
            with live.outcome.clock():  # the host's own time, not its wait for a worker
                work()
            return True
        except StepFailed as exc:
            if live.step == "lock":
                self._fail(live, "lock", f"host {name}: {exc}", Status.LOCKED)
            else:
                self._fail(live, live.step, f"host {name}: {live.step}: {exc}")
        except TransportError as exc:
            self._fail(live, live.step, str(exc), Status.UNREACHABLE)
        except FleetdistError as exc:
            self._fail(live, live.step, str(exc))
        except Exception as exc:  # a worker must never take the rollout down
            self._fail(live, live.step, f"host {name}: internal error: {type(exc).__name__}: {exc}")
        return False

    def _release(self, live: Live, lines: Iterable[str] = ()) -> None:
        """Append failure lines and give the lease back; best effort, then close."""
        if live.transport is None:
            return
        try:
            if live.locked or list(lines):
                lock = self.options.lock if live.locked else None
                self._send(live, steps.finish(live.job.ctx.layout, lock, lines))
        except Exception:
            pass
        finally:
            live.transport.close()
            self.emit(Event("host_done", live.job.host.name, data={"status": live.outcome.status}))

    def _recovered(self, live: Live, result: Result) -> None:
        """Say so when the host undid a flip a dead script had left unconfirmed."""
        for what in steps.parse_recoveries(result.stdout):
            self._stage(live, "recovered", message=what)

    def _activated(self, live: Live, result: Result, target: str, *, released: bool) -> None:
        """Turn an activation script's result into the host's outcome."""
        if result.exit_code == steps.REVERTED:
            live.outcome.status, live.outcome.failed_step = Status.REVERTED, "healthcheck"
            live.outcome.error = result.tail()
            self.emit(
                Event("stage", live.job.host.name, "failed", result.tail(), {"step": "healthcheck"})
            )
            return
        if result.exit_code == steps.NOT_TESTED:
            live.step = "tested"
        if not result.ok:
            raise StepFailed(result.tail() or f"exit code {result.exit_code}")
        live.outcome.status, live.outcome.to_release = Status.OK, target
        live.locked = live.locked and not released
        self._stage(live, "activated", release=target)

    def _end(self, lives: list[Live], action: str) -> None:
        """Whatever happened: record failures, give leases back, close, report the run."""
        release = lambda lv: self._release(lv, self._failure_lines(lv, action))  # noqa: E731
        parallel(release, lives, self.options.parallel)
        self.emit(Event("run_finished", data=self.fleet.to_json()))

    def _failure_lines(self, live: Live, action: str) -> list[str]:
        """A ledger line for failures the host's own scripts did not record."""
        o = live.outcome
        if not live.locked or o.status != Status.FAILED:
            return []
        return [
            self._ledger_line(
                live, action, "failed", o.to_release, step=o.failed_step or "", error=o.error or ""
            )
        ]

    def _live(self, job: HostJob, target: str | None) -> Live:
        outcome = HostOutcome(job.host.name, to_release=target)
        self.fleet.hosts[job.host.name] = outcome
        return Live(job, outcome)
