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
import time
from collections.abc import Callable, Mapping, Sequence

from fleetdist.errors import TransportError
from fleetdist.orchestrate import plan
from fleetdist.orchestrate.batches import OnFailure
from fleetdist.orchestrate.hostrun import HostRun, check
from fleetdist.orchestrate.work import HostJob, Live, StepFailed, parallel
from fleetdist.release import steps
from fleetdist.release.lease import LOCK_HELD, LockSpec
from fleetdist.report.events import Event
from fleetdist.report.outcome import FleetOutcome, Status
from fleetdist.transport.base import Result

# What a host is sent, chosen per host (see `steps.Upload`).
Uploads = Callable[[HostJob], steps.Upload]

# Exit codes a rollback script ends with on purpose (anything else raises StepFailed).
_ROLLBACK_ENDS = (0, LOCK_HELD, steps.REVERTED)


class Rollout(HostRun):
    """One deploy or rollback across many hosts.  Create one per run."""

    _leased_since = 0.0  # monotonic time of the last take or renewal of this run's leases

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

            def attempt(lock: LockSpec) -> Result:
                live.step = "prepare"  # until its output tells which part failed
                options = dataclasses.replace(self.options, lock=lock)
                step = plan.prepare_step(live.job, options, upload, self.fleet.run_id)
                return self._send(live, step)

            self._prepared(live, self._leased(live, attempt))

        return self._guard(live, work) and live.outcome.status != Status.UNCHANGED

    def _prepared(self, live: Live, result: Result) -> None:
        """Read the prepare script's facts and markers into the host's state and events
        (a runbook's deploy step sends its prepare under the run's lease: no retry)."""
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
        check(live, result)
        self._stage(live, "tested")

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
        seen = live.job.ctx.release_id  # this rollout cut it over
        return plan.flip_back(
            live.job, self.options, self.fleet.run_id, target, seen=seen, release=True
        )

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
        self._leased_since = time.monotonic()  # no lease of this run is older
        self.emit(
            Event("run_started", data={"hosts": [j.host.name for j in jobs], "phase": "prepare"})
        )
        try:
            ready = parallel(lambda lv: self._prepare(lv, uploads), lives, self.options.parallel)
            candidates = [lv for lv, ok in zip(lives, ready, strict=True) if ok]
            if not self._within(budget):
                self.fleet.aborted = "failure budget exceeded while preparing"
            else:
                self._cut_over_batches(candidates, budget, lives)
            if self.fleet.aborted:
                self.emit(Event("aborted", message=self.fleet.aborted))
                if self.options.on_failure is OnFailure.ROLLBACK:
                    self._undo([lv for lv in lives if lv.outcome.status == Status.OK])
        finally:
            self._end(lives, "deploy")
        return self.fleet

    def _cut_over_batches(
        self, candidates: list[Live], budget: int | None, lives: list[Live]
    ) -> None:
        """Batch by batch; the canary verdict counts every host planned for it, including
        one whose renewal or `around_batch.before` failed (it never got to cut over)."""
        by_name = {lv.job.host.name: lv for lv in candidates}
        batches = self.options.batches.split(list(by_name), len(lives))
        for index, names in enumerate(batches):
            self._renew_held(lives)
            planned = [by_name[n] for n in names]
            batch = [lv for lv in planned if not lv.outcome.failed]
            hosts = [lv.job.host.name for lv in batch]
            self.emit(Event("batch_started", data={"index": index, "hosts": hosts}))
            batch = self._around(batch, "before")
            parallel(self._cut_over, batch, self.options.parallel)
            self._around(batch, "after")
            self.emit(Event("batch_finished", data={"index": index}))
            canary = self.options.batches.canary
            if index == 0 and canary and any(lv.outcome.failed for lv in planned):
                self.fleet.aborted = "canary failed"
                return
            if not self._within(budget):
                self.fleet.aborted = "failure budget exceeded (--max-fail)"
                return

    def _renew_held(self, lives: list[Live]) -> None:
        """Renew every lease this run still holds (hosts waiting for their batch, hosts
        kept for --on-failure rollback, unchanged ones) once a third of the lease has
        gone by since the last renewal: slow batches must not let them expire.  A host
        whose lease another run took over fails as locked and is not cut over; one that
        cannot be reached just now keeps its turn (its cut-over renews the lease itself,
        or fails)."""
        if time.monotonic() - self._leased_since < self.options.lock.lease / 3:
            return
        self._leased_since = time.monotonic()
        held = [lv for lv in lives if lv.locked and not lv.outcome.failed]
        parallel(self._renew, held, self.options.parallel)

    def _renew(self, live: Live) -> None:
        name = live.job.host.name
        try:
            result = self._send(live, self._renewal(live))
        except TransportError as exc:
            self._stage(live, "renewal-missed", error=str(exc))
            return
        if result.exit_code == LOCK_HELD:
            self._fail(live, "lock", f"host {name}: {result.tail()}", Status.LOCKED)
        elif result.ok:
            self._stage(live, "renewed")
        else:
            self._stage(live, "renewal-missed", error=result.tail())

    def _renewal(self, live: Live) -> steps.Step:
        return steps.renew_lease(live.job.ctx.layout, self.options.lock)

    def _around(self, batch: list[Live], when: str) -> list[Live]:
        """The recipe's `around_batch` steps (`options.around`) for this batch's hosts; a
        host whose steps failed fails; the others are returned (to be cut over)."""
        hooks = self.options.around
        if hooks is None or not batch:
            return batch
        run = hooks.before if when == "before" else hooks.after
        failed = run(batch, self.factory, self.emit)
        for live in batch:
            if live.job.host.name in failed:
                error = f"host {live.job.host.name}: {failed[live.job.host.name]}"
                self._fail(live, f"around_batch.{when}", error)
        return [lv for lv in batch if lv.job.host.name not in failed]

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

        result = self._leased(live, attempt)
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
