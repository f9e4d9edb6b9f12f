"""Run release steps on many hosts: prepare everywhere, then cut over in gated batches.

Phase 1 (prepare) takes each host's lease, stages and tests the release in
place, in parallel; nothing users see changes.  Phase 2 (cut over) flips
`current` canary first, then batch by batch, only on hosts that passed, and
stops starting batches once the failure budget is spent.  A worker never
lets an exception escape: everything ends up in the host's HostOutcome.
A host gives its lease back in the same script that cuts it over, except
under `--on-failure rollback`, which holds every lease until the rollout is
over so it can still undo a host that was cut over early.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

from fleetdist.errors import FleetdistError, TransportError
from fleetdist.orchestrate import plan
from fleetdist.orchestrate.batches import OnFailure
from fleetdist.orchestrate.work import HostJob, Live, RolloutOptions, StepFailed, parallel
from fleetdist.release import steps
from fleetdist.release.command import SUDO_NEEDS_PASSWORD
from fleetdist.release.facts import BECAME
from fleetdist.release.lease import LOCK_HELD, LockSpec
from fleetdist.report import ledger
from fleetdist.report.events import Event, Reporter
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.transport.base import Result, Stdin, TransportFactory, is_protocol

# What a host is sent, chosen per host (see `steps.Upload`).
Uploads = Callable[[HostJob], steps.Upload]

# Exit codes a rollback script ends with on purpose (anything else raises StepFailed).
_ROLLBACK_ENDS = (0, LOCK_HELD, steps.REVERTED)
# What a host is doing once its prepare script printed each protocol line (live view only).
_UNDER_WAY = {
    steps.SEND: "uploading",
    steps.RECEIVED: "unpacking",
    steps.STAGED: "testing",
    steps.UNCHANGED: "unchanged",
}


def _check(live: Live, result: Result) -> None:
    """Raise StepFailed for a non-zero exit, blaming the lease if the script said so."""
    if result.exit_code == LOCK_HELD:
        live.step = "lock"
    if not result.ok:
        raise StepFailed(result.tail() or f"exit code {result.exit_code}")


class Rollout:
    """One deploy or rollback across many hosts.  Create one per run."""

    def __init__(
        self,
        *,
        fleet: FleetOutcome,
        factory: TransportFactory,
        reporter: Reporter,
        options: RolloutOptions,
    ) -> None:
        self.fleet, self.factory, self.emit, self.options = fleet, factory, reporter, options

    # -- helpers -------------------------------------------------------------

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

    def _run(self, live: Live, step: steps.Step, allow: tuple[int, ...] = ()) -> Result:
        """Run one step; a non-zero exit (other than those in `allow`) raises StepFailed."""
        live.step = step.name
        result = self._send(live, step)
        if result.exit_code not in allow:
            _check(live, result)
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

    # -- deploy --------------------------------------------------------------

    def _prepare(self, live: Live, uploads: Uploads) -> bool:
        """Phase 1 on one host: one script takes the lease, stages and tests (`plan.prepare_step`).

        A stale lease (its holder provably dead) is taken over with one retry,
        as in `_rollback_host`; the script asks for the upload only after the
        lease is ours, so that retry never uploads twice.
        """

        def work() -> None:
            live.step = "connect"
            live.transport = self.factory(live.job.host)
            self._stage(live, "connected")
            upload = uploads(live.job)

            def attempt(options: RolloutOptions) -> Result:
                live.step = "prepare"  # until its output tells which part failed
                step = plan.prepare_step(live.job, options, upload, self.fleet.run_id)
                return self._send(live, step)

            result = attempt(self.options)
            stale = self.options.stale(result.stderr) if result.exit_code == LOCK_HELD else None
            if stale:
                self.emit(
                    Event("stage", live.job.host.name, "takeover", f"stale lease of run {stale}")
                )
                lock = dataclasses.replace(self.options.lock, takeover=stale)
                result = attempt(dataclasses.replace(self.options, lock=lock))
            self._prepared(live, result)

        return self._guard(live, work) and live.outcome.status != Status.UNCHANGED

    def _prepared(self, live: Live, result: Result) -> None:
        """Read the prepare script's facts and markers into the host's state and events."""
        if result.exit_code == LOCK_HELD:
            live.step = "lock"
            raise StepFailed(result.tail())
        live.locked = True
        live.facts = steps.parse_facts(result.stdout)
        live.outcome.from_release = live.facts.current
        self._stage(live, "probed", current=live.facts.current)
        self._recovered(live, result)
        lines = steps.parse_markers(result.stdout)
        if steps.UNCHANGED in lines and result.ok:
            live.outcome.status = Status.UNCHANGED
            return
        live.step = "upload" if steps.SEND in lines else "probe"
        if steps.RECEIVED in lines:
            self._stage(live, "uploaded")
            live.step = "unpack"
        if steps.STAGED in lines:
            self._stage(live, "staged")
            live.step = "test"
        _check(live, result)
        self._stage(live, "tested")

    def _recovered(self, live: Live, result: Result) -> None:
        """Say so when the host undid a flip a dead script had left unconfirmed."""
        for what in steps.parse_recoveries(result.stdout):
            self._stage(live, "recovered", message=what)

    def _activate(
        self, live: Live, step: steps.Step, target: str, *, seen: str | None, released: bool
    ) -> None:
        """Run an activation step; `released`: the same script gives the lease back.

        The journal records `activating` (durably) before the script is sent,
        with `seen`, the release `current` points at as far as this rollout
        knows, so `rollback --run` sees this host even if the controller dies
        before the script reports back.
        """
        live.step = "activate"
        self._stage(live, "activating", current=seen, release=target)
        self._activated(live, self._send(live, step), target, released=released)

    def _flip_back(self, live: Live, target: str) -> steps.Step:
        """The activation `--on-failure rollback` sends to undo this rollout on a host."""
        ledgers = self._ledgers(live, "rollback")
        return steps.activate(
            live.job.ctx,
            self.options.lock,
            target,
            action="rollback",
            ledger_ok=ledgers.ok,
            ledger_reverted=ledgers.reverted,
            ledger_recovered=ledgers.recovered,
            release=True,
            seen=live.job.ctx.release_id,  # this rollout cut it over
            untested_ok=self.options.allow_untested,
        )

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

    def _cut_over(self, live: Live) -> None:
        """The flip `plan.cutover_steps` gives for this host's facts.  The lease goes
        back in the same script, unless --on-failure rollback may still need it."""
        flip = plan.cutover_steps(live.job, self.options, live.facts, self.fleet.run_id)[0]
        target, keep = live.job.ctx.release_id, plan.holds_leases(self.options)
        self._guard(
            live,
            lambda: self._activate(live, flip, target, seen=live.facts.current, released=not keep),
        )

    def deploy(self, jobs: Sequence[HostJob], release_id: str, uploads: Uploads) -> FleetOutcome:
        """Prepare `release_id` on every host (each sent `uploads(job)`), then cut over."""
        lives = [self._live(job, release_id) for job in jobs]
        budget = self.options.max_fail.allowed(len(lives))
        self.emit(
            Event("run_started", data={"hosts": [j.host.name for j in jobs], "phase": "prepare"})
        )
        try:
            ready = parallel(lambda lv: self._prepare(lv, uploads), lives, self.options.parallel)
            candidates = [lv for lv, ok in zip(lives, ready, strict=True) if ok]
            if not self._within(budget):
                self.fleet.aborted = "failure budget exceeded while preparing"
            else:
                self._cut_over_batches(candidates, budget, len(lives))
            if self.fleet.aborted:
                self.emit(Event("aborted", message=self.fleet.aborted))
                if self.options.on_failure is OnFailure.ROLLBACK:
                    self._undo([lv for lv in lives if lv.outcome.status == Status.OK])
        finally:
            self._end(lives, "deploy")
        return self.fleet

    def _cut_over_batches(self, candidates: list[Live], budget: int | None, total: int) -> None:
        by_name = {lv.job.host.name: lv for lv in candidates}
        batches = self.options.batches.split(list(by_name), total)
        for index, names in enumerate(batches):
            batch = [by_name[n] for n in names]
            self.emit(Event("batch_started", data={"index": index, "hosts": names}))
            parallel(self._cut_over, batch, self.options.parallel)
            self.emit(Event("batch_finished", data={"index": index}))
            canary = self.options.batches.canary
            if index == 0 and canary and any(lv.outcome.failed for lv in batch):
                self.fleet.aborted = "canary failed"
                return
            if not self._within(budget):
                self.fleet.aborted = "failure budget exceeded (--max-fail)"
                return

    def _within(self, budget: int | None) -> bool:
        failed = sum(1 for o in self.fleet.hosts.values() if o.failed)
        return budget is None or failed <= budget

    def _undo(self, lives: list[Live]) -> None:
        """--on-failure rollback: put hosts cut over by this rollout back where they were."""

        def undo(live: Live) -> None:
            previous = live.facts.current
            if previous is None:
                return  # first deploy on this host: there is nothing older to go back to

            def work() -> None:
                step = self._flip_back(live, previous)
                self._activate(live, step, previous, seen=live.job.ctx.release_id, released=True)
                live.outcome.status, live.outcome.to_release = Status.ROLLED_BACK, previous

            self._guard(live, work)

        parallel(undo, lives, self.options.parallel)

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

    # -- rollback ------------------------------------------------------------

    def _rollback_host(self, live: Live, to: str | None) -> None:
        """One script does it all (see `steps.rollback`); the same stale-lease retry as probe."""
        live.step = "connect"
        live.transport = self.factory(live.job.host)
        self._stage(live, "connected")
        ledgers = self._ledgers(live, "rollback")

        def attempt(lock: LockSpec) -> Result:
            script = steps.rollback(
                live.job.ctx, lock, to, ledgers=ledgers, untested_ok=self.options.allow_untested
            )
            if to:  # a named target: journal the intent first, as `_activate` does
                self._stage(live, "activating", release=to)
            return self._run(live, script, allow=_ROLLBACK_ENDS)

        result = attempt(self.options.lock)
        stale = self.options.stale(result.stderr) if result.exit_code == LOCK_HELD else None
        if stale:
            result = attempt(dataclasses.replace(self.options.lock, takeover=stale))
        if result.exit_code == LOCK_HELD:
            live.step = "lock"
            raise StepFailed(result.tail())
        live.locked = not result.ok  # the script gave the lease back unless it stopped early
        live.facts = steps.parse_facts(result.stdout)
        live.outcome.from_release = live.facts.current
        self._stage(live, "probed", current=live.facts.current)
        self._recovered(live, result)
        target = steps.parse_target(result.stdout)
        live.outcome.to_release = target or None
        if steps.UNCHANGED in steps.parse_markers(result.stdout):
            live.outcome.status = Status.UNCHANGED
            return
        self._activated(live, result, target, released=True)

    def rollback(
        self,
        jobs: Sequence[HostJob],
        to: str | None,
        per_host: Mapping[str, str | None] | None = None,
    ) -> FleetOutcome:
        """Re-activate `to`, the release `per_host` names for each host, or each
        host's previous release (neither given: `--step-back`).

        With `per_host` (the hosts a rollout moved, to where each was before
        it), a host whose entry is None was on nothing before: it fails with
        "no previous release" rather than going anywhere else.  Symmetric by
        construction: undoing a rollback is undoing a rollout too.
        """
        lives = [self._live(job, to) for job in jobs]
        self.emit(
            Event("run_started", data={"hosts": [j.host.name for j in jobs], "phase": "rollback"})
        )

        def one(live: Live) -> None:
            def work() -> None:
                target = to
                if per_host is not None and not to:
                    target = per_host.get(live.job.host.name)
                    if target is None:
                        live.step = "rollback"
                        raise StepFailed("no previous release to roll back to")
                self._rollback_host(live, target)

            self._guard(live, work)

        try:
            parallel(one, lives, self.options.parallel)
        finally:
            self._end(lives, "rollback")
        return self.fleet
