"""Run one host's steps in order, undo the completed ones, and journal every step.

Shared by a runbook run (`engine`) and a deploy's `around_batch` (`around`):
each step's `started`, `ok`, `failed`, `undoing`, `undone` is a `stage`
event the journal keeps durably (`data.runbook_step`, `data.state`), which
is what `--resume` reads back.  Nothing here raises: an action that fails,
or breaks, comes back as a failed `Done`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.errors import FleetdistError, TransportError
from fleetdist.orchestrate.work import StepFailed
from fleetdist.release.facts import Facts
from fleetdist.report.events import Event, Reporter
from fleetdist.report.outcome import HostOutcome, Status
from fleetdist.runbook import kinds
from fleetdist.runbook.actions import (
    Action,
    DeployRelease,
    HttpGet,
    LocalRun,
    Planned,
    Prompt,
    Remote,
    RollbackRelease,
    Sleep,
    other_host,
)
from fleetdist.runbook.deploying import HostDeploy
from fleetdist.runbook.kinds import Done
from fleetdist.runbook.outcome import StepResult
from fleetdist.transport.base import Transport, TransportFactory

Completed = tuple[Planned, StepResult]  # a completed step and its record


@dataclass(frozen=True)
class Prior:
    """What earlier runs of a resumed run did on one host: the first step to run now,
    and what the journal kept of each step (a deploy's `from`, for its undo)."""

    start: int = 0
    data: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


NO_PRIOR = Prior()


def _no_lease(name: str) -> str | None:
    return None


class HostSteps:
    """Runs steps for hosts whose transports are in `transports` (opened by the caller).

    `deployers` do the deploy and rollback steps, by recipe; `cwd` is where
    `local` steps run; `yes` lets `pause` steps go on without asking.
    """

    def __init__(
        self,
        *,
        factory: TransportFactory,
        reporter: Reporter,
        transports: dict[str, Transport],
        cwd: Path,
        yes: bool = False,
        deployers: Mapping[str, HostDeploy] | None = None,
        renew: Callable[[str], str | None] = _no_lease,
        renew_every: float = 60.0,
    ) -> None:
        self.factory, self.emit, self.transports = factory, reporter, transports
        self.renew = renew  # before each step: keep the host's lease; an error if lost
        self.renew_every = renew_every  # and this often during a `wait` step
        self.cwd, self.yes, self.deployers = cwd, yes, dict(deployers or {})
        self.stop = threading.Event()  # set on Ctrl-C: no further step starts

    def run(
        self, name: str, plans: Sequence[Planned], prior: Prior = NO_PRIOR
    ) -> tuple[list[StepResult], list[Completed], StepResult | None]:
        """Run `plans` on host `name` in order, from `prior.start` (the steps before it are
        reported `done`), until one fails.  Returns every step's record, the completed
        ones (what `undo` may undo) and the failed one, if any; undoing is the caller's.
        After Ctrl-C (`stop`) no further step starts: the one returned is `interrupted`."""
        records: list[StepResult] = []
        done: list[Completed] = []
        for index, planned in enumerate(plans):
            if index < prior.start:
                kept = dict(prior.data.get(planned.name, {}))
                record = StepResult(planned.name, "done", data=kept)
            elif self.stop.is_set():  # not started, and not undone: --resume goes on here
                return records, done, StepResult(planned.name, "interrupted")
            elif problem := self.renew(name):
                record = StepResult(planned.name, "failed", error=problem)
                self._failed(name, planned.name, problem)
            else:
                record = self.step(name, planned, prior)
            records.append(record)
            if record.status not in ("ok", "done"):
                return records, done, record
            done.append((planned, record))
        return records, done, None

    def step(self, name: str, planned: Planned, prior: Prior = NO_PRIOR) -> StepResult:
        """Run one step on host `name`, journaled before and after; `prior` holds what an
        earlier run of a resumed run kept of it (a deploy's `from`)."""
        record = StepResult(planned.name, "ok", on=other_host(planned.action, name))
        self._record(name, planned.name, "started", on=record.on)
        started = time.monotonic()
        done = self._act(
            name, planned.name, planned.action, planned.timeout, prior.data.get(planned.name, {})
        )
        record.seconds = round(time.monotonic() - started, 3)
        record.data = done.data
        if not done.ok:
            record.status, record.error = "failed", done.error
            self._failed(name, planned.name, done.error or "")
        else:
            self._record(name, planned.name, "ok", **done.data)
        return record

    def undo(self, name: str, done: Sequence[Completed]) -> None:
        """Undo the host's completed steps that have an undo, last first; keep going if
        one fails (each says how it ended)."""
        for planned, record in reversed(done):
            if planned.undo is None:
                continue
            self._record(name, planned.name, "undoing")
            ended = self._act(
                name, f"undo {planned.name}", planned.undo, planned.undo_timeout, record.data
            )
            record.status = "undone" if ended.ok else "undo-failed"
            if not ended.ok:
                record.error = f"undo: {ended.error}"
            self._record(name, planned.name, record.status, message=ended.error or "")

    def _failed(self, host: str, step: str, error: str) -> None:
        payload = {"step": step, "runbook_step": step, "state": "failed"}
        self.emit(Event("stage", host, "failed", error, payload))

    def _record(self, host: str, step: str, state: str, message: str = "", **data: Any) -> None:
        """A step event the journal keeps (durably): what `--resume` reads back."""
        payload = {"runbook_step": step, "state": state, **data}
        self.emit(Event("stage", host, f"{step}: {state}", message, payload))

    # -- one action ----------------------------------------------------------------

    def _act(
        self,
        name: str,
        step: str,
        action: Action,
        timeout: float | None,
        before: Mapping[str, Any],
    ) -> Done:
        """Run one action for host `name`; never raises.  `before`: what the journal
        kept of this step (for an undo: the step undone) from this or an earlier run."""

        def on_line(stream: str, line: str) -> None:
            self.emit(Event("output", name, message=line, data={"stream": stream, "step": step}))

        try:
            return self._dispatch(name, action, timeout, before, on_line)
        except FleetdistError as exc:
            return Done(False, str(exc))
        except Exception as exc:  # a worker must never take the run down
            return Done(False, f"internal error: {type(exc).__name__}: {exc}")

    def _dispatch(
        self,
        name: str,
        action: Action,
        timeout: float | None,
        before: Mapping[str, Any],
        on_line: Callable[[str, str], None],
    ) -> Done:
        if isinstance(action, Remote):
            return self._remote(name, action, timeout, on_line)
        if isinstance(action, LocalRun):
            return kinds.local(action, self.cwd, timeout, on_line)
        if isinstance(action, HttpGet):
            deadline = time.monotonic() + timeout if timeout else None
            return kinds.http(action, deadline, on_line)
        if isinstance(action, Sleep):
            return self._sleep(name, action.seconds)
        if isinstance(action, Prompt):
            return kinds.prompt(action, yes=self.yes, host=name)
        if isinstance(action, DeployRelease):
            return self._deploy(name, action, before)
        return self._rollback(name, action, before)

    def _sleep(self, name: str, seconds: float) -> Done:
        """A `wait` step, a minute at a time, keeping the host's lease as it goes (a wait
        may be longer than the lease)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self.renew_every))
            if problem := self.renew(name):
                return Done(False, problem)
        return Done(True)

    def _remote(
        self, name: str, action: Remote, timeout: float | None, on_line: Callable[[str, str], None]
    ) -> Done:
        """On the host itself over the run's connection; on another (`on:`) over its own."""
        if action.host.name == name:
            return kinds.remote(action, self.transports[name], timeout, on_line)
        try:
            transport = self.factory(action.host)
        except TransportError as exc:
            return Done(False, str(exc))
        try:
            return kinds.remote(action, transport, timeout, on_line)
        finally:
            transport.close()

    def _deploy(self, name: str, action: DeployRelease, before: Mapping[str, Any]) -> Done:
        """The built-in rollout on this host.  `from` is where the host was before this
        step first ran (kept across a resume), so the undo knows where to go back to."""
        deployer = self.deployers[action.recipe]
        got = deployer.deploy_host(name, self.transports[name])
        release = deployer.run.release_id
        origin = before.get("from", got.from_release)
        data = {"recipe": action.recipe, "from": origin, "to": release}
        if got.status not in (Status.OK, Status.UNCHANGED):
            return Done(False, _why(got), data)
        return Done(True, data={**data, "changed": origin != release})

    def _rollback(self, name: str, action: RollbackRelease, before: Mapping[str, Any]) -> Done:
        """As the undo of a deploy (`before` holds its `from`): back to where that deploy
        found the host, or nothing if it changed nothing; else to `to` or the previous."""
        deployer = self.deployers[action.recipe]
        undoing = "to" in before and before.get("recipe") == action.recipe

        def pick(facts: Facts) -> tuple[str | None, str | None]:
            if undoing:
                if not before.get("changed", True):
                    return facts.current, facts.current  # the deploy changed nothing here
                if not before.get("from"):
                    raise StepFailed("the deploy found no release here: nothing to go back to")
                return str(before["from"]), before["to"]
            target = action.to or facts.previous
            if not target:
                raise StepFailed("no previous release to roll back to")
            return target, facts.current

        got = deployer.rollback_host(name, self.transports[name], pick)
        data = {"recipe": action.recipe, "from": got.from_release, "to": got.to_release}
        if got.status not in (Status.OK, Status.UNCHANGED):
            return Done(False, _why(got), data)
        return Done(True, data=data)


def _why(got: HostOutcome) -> str:
    return got.error or f"{got.failed_step or 'deploy'}: {got.status}"
