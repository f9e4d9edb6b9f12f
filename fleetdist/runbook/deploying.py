"""`deploy` and `rollback` steps: the built-in rollout, for one host, inside a runbook run.

A runbook holds the per-app lease on every target host for its whole run
(`lease_step`, taken before the first batch and given back at the end), so
its deploy steps run the very scripts of a deploy (`orchestrate.plan`:
prepare, then the flip with its hooks and healthcheck) under the run's own
lease: same run id, so `lease_take` only renews it, and the flip keeps it
(`holds_leases`).  A rollback step is the activation `--on-failure rollback`
sends, also keeping the lease.  The same functions give `--dry-run` its
scripts, so what it prints is what runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from fleetdist.errors import FleetdistError
from fleetdist.orchestrate import plan
from fleetdist.orchestrate.runner import Rollout, Uploads
from fleetdist.orchestrate.work import HostJob, Live, RolloutOptions, StepFailed
from fleetdist.release import steps
from fleetdist.release.facts import Facts
from fleetdist.report.events import Reporter
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status
from fleetdist.transport.base import Transport, TransportFactory


@dataclass(frozen=True)
class RecipeRun:
    """One recipe a runbook deploys, rolls back, or holds the lease of.

    `jobs` are its per-host contexts (by host name, every target host);
    `uploads` what a deploy sends each host (None: the runbook never deploys
    it); `options` the rollout's own (`lock` is the run's lease).
    """

    key: str
    app: str
    release_id: str | None
    jobs: dict[str, HostJob]
    options: RolloutOptions
    run_id: str
    uploads: Uploads | None = None

    def lease_step(self, host: str, takeover: str = "") -> steps.Step:
        """Take the run's lease on `host` (over `takeover`, a run proved dead, if given)."""
        lock = dataclasses.replace(self.options.lock, takeover=takeover)
        return steps.take_lease(self.jobs[host].ctx.layout, lock)

    def renew_step(self, host: str) -> steps.Step:
        """Push out the expiry of the run's lease on `host`, as a rollout renews its own:
        one another run took over, or an operator broke, is lost, not taken again."""
        return steps.renew_lease(self.jobs[host].ctx.layout, self.options.lock)

    def release_step(self, host: str) -> steps.Step:
        return steps.finish(self.jobs[host].ctx.layout, self.options.lock, ())

    def deploy_steps(self, host: str, facts: Facts) -> list[steps.Step]:
        """What a deploy step sends `host` whose probe said `facts` (a dry run's view)."""
        job = self.jobs[host]
        assert self.uploads is not None, "a deploy step's recipe has uploads"
        prepare = plan.prepare_step(job, self.options, self.uploads(job), self.run_id)
        return [prepare, plan.cutover_steps(job, self.options, facts, self.run_id)[0]]

    def rollback_step(self, host: str, target: str, seen: str | None) -> steps.Step:
        """The flip back to `target` from `seen`, keeping the run's lease."""
        job = self.jobs[host]
        return plan.flip_back(job, self.options, self.run_id, target, seen=seen, release=False)


class HostDeploy(Rollout):
    """The per-host pieces of `Rollout`, driven one host at a time by a runbook.

    The host's transport is the run's (opened once per host), and its lease
    is already held: nothing here connects, takes over or gives back."""

    def __init__(
        self, run: RecipeRun, *, fleet: FleetOutcome, factory: TransportFactory, reporter: Reporter
    ) -> None:
        super().__init__(fleet=fleet, factory=factory, reporter=reporter, options=run.options)
        self.run = run

    def _host(self, host: str, transport: Transport, target: str | None) -> Live:
        live = self._live(self.run.jobs[host], target)
        live.transport, live.locked = transport, True
        return live

    def deploy_host(self, host: str, transport: Transport) -> HostOutcome:
        """Prepare and cut over one host; its outcome says from where to where, or why not."""
        live = self._host(host, transport, self.run.release_id)
        uploads = self.run.uploads
        assert uploads is not None, "a deploy step's recipe has uploads"

        def work() -> None:
            live.step = "prepare"
            upload = uploads(live.job)
            step = plan.prepare_step(live.job, self.options, upload, self.fleet.run_id)
            self._prepared(live, self._send(live, step))
            if live.outcome.status != Status.UNCHANGED:
                self._cut_over(live)

        if not self._guard(live, work):
            self._record_failure(live)
        return live.outcome

    def _record_failure(self, live: Live) -> None:
        """The ledger line a deploy writes for a failure its scripts did not record; the
        run keeps its lease (`finish` without a lock gives nothing back).  Best effort."""
        lines = self._failure_lines(live, "deploy")
        if lines:
            with contextlib.suppress(FleetdistError):
                self._send(live, steps.finish(live.job.ctx.layout, None, lines))

    def rollback_host(
        self,
        host: str,
        transport: Transport,
        pick: Callable[[Facts], tuple[str | None, str | None]],
    ) -> HostOutcome:
        """Flip `host` back to the target `pick` chooses from its facts (target, seen)."""
        live = self._host(host, transport, None)

        def work() -> None:
            live.step = "probe"
            result = self._send(live, steps.probe(live.job.ctx.layout))
            if not result.ok:
                raise StepFailed(result.tail() or f"exit code {result.exit_code}")
            live.facts = steps.parse_facts(result.stdout)
            live.outcome.from_release = live.facts.current
            target, seen = pick(live.facts)
            live.outcome.to_release = target
            if target is None or target == live.facts.current:
                live.outcome.status = Status.UNCHANGED
                return
            step = self.run.rollback_step(host, target, seen)
            self._activate(live, step, target, seen=seen, released=False)

        self._guard(live, work)
        return live.outcome
