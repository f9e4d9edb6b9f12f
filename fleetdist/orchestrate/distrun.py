"""`fleetdist dist --hosts`: one dist.json's result rolled out like a release.

A `Rollout` whose two phases are distman's (`release.diststeps`), so canary,
batches, the failure budget, the journal, leases, `--resume`, the exit codes
and the reports are the rollout's own, not a copy:

- prepare (every host, in parallel): `probe` takes the lease and prints each
  target's versions and link; the controller's `decide` (injected: it knows
  distman's version rules) picks each target's version there; `stage` makes
  the versions the host lacks and runs the in-place tests in them.  A host
  whose links already point where they should is `unchanged`.
- cut over (canary, then batches): `switch` moves every link of the host
  and gives the lease back.

`-n/-c/--reset` across hosts is the same rollout with `moving`: nothing is
made or tested, only links move (each `.dist` file keeps its repo fields).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from fleetdist.orchestrate.hostrun import check
from fleetdist.orchestrate.runner import Rollout, Uploads
from fleetdist.orchestrate.work import HostJob, Live, RolloutOptions
from fleetdist.release import distfacts, diststeps, steps
from fleetdist.release.distfacts import TargetFacts
from fleetdist.release.diststeps import HostTarget, Placement
from fleetdist.release.lease import LockSpec
from fleetdist.report.events import Reporter
from fleetdist.report.outcome import FleetOutcome, Status
from fleetdist.transport.base import Result, TransportFactory


@dataclass(frozen=True)
class DistJob(HostJob):
    """A host, its dist root (as its transport sees it), its targets and its in-place
    tests there (`{VAR}` already filled with the host's values)."""

    deploy_root: str = ""
    targets: tuple[HostTarget, ...] = ()
    tests: tuple[str, ...] = ()


# The controller's choice of each target's version on one host, from its facts;
# raises (a FleetdistError naming the target) when a target cannot go there.
Decide = Callable[[DistJob, list[TargetFacts]], list[Placement]]


@dataclass(frozen=True)
class DistWork:
    """What this run does on every host: which dist, how versions are chosen, the tests."""

    dist_id: str
    decide: Decide
    moving: bool = False  # -n/-c/--reset: only links move


class DistRollout(Rollout):
    """One `dist --hosts` run; create one per run."""

    def __init__(
        self,
        *,
        work: DistWork,
        fleet: FleetOutcome,
        factory: TransportFactory,
        reporter: Reporter,
        options: RolloutOptions,
    ) -> None:
        super().__init__(fleet=fleet, factory=factory, reporter=reporter, options=options)
        self.work = work
        self.chosen: dict[str, list[Placement]] = {}

    def _probe(self, live: Live, job: DistJob) -> Result:
        """`probe` under the lease, taking over a provably dead run's lease once."""
        ledgers = self._ledgers(live, "recover")

        def attempt(lock: LockSpec) -> Result:
            return self._send(live, diststeps.probe(job.deploy_root, job.targets, lock, ledgers))

        result = self._leased(live, attempt)
        live.locked = True
        check(live, result)
        return result

    def _prepare(self, live: Live, uploads: Uploads) -> bool:
        def work() -> None:
            job = cast(DistJob, live.job)
            live.step = "connect"
            live.transport = self.factory(job.host)
            self._stage(live, "connected")
            live.step = "probe"
            result = self._probe(live, job)
            facts = distfacts.parse_facts(result.stdout, len(job.targets))
            self._stage(live, "probed")
            for what in distfacts.parse_recovered(result.stdout):
                self._stage(live, "recovered", message=what)
            live.step = "plan"
            chosen = self.work.decide(job, facts)
            if _unchanged(chosen, job.targets, facts):
                live.outcome.status = Status.UNCHANGED
                return
            if not self.work.moving:
                chosen = self._test(live, job, chosen, uploads)
                # `match: content` may have found the linked version
                if _unchanged(chosen, job.targets, facts):
                    live.outcome.status = Status.UNCHANGED
                    return
            self.chosen[job.host.name] = chosen

        return self._guard(live, work) and live.outcome.status != Status.UNCHANGED

    def _test(
        self, live: Live, job: DistJob, chosen: list[Placement], uploads: Uploads
    ) -> list[Placement]:
        """`stage`: make the missing versions (the payload sent only then), run the tests;
        the placements, with the older versions the host found equal (`match: content`)."""
        upload = uploads(job) if any(p.slot is not None for p in chosen) else None
        live.step = "stage"
        step = diststeps.stage(
            job.deploy_root,
            job.host.name,
            self.work.dist_id,
            self.options.lock,
            chosen,
            job.tests,
            upload,
        )
        result = self._send(live, step)
        lines = steps.parse_markers(result.stdout)
        if steps.RECEIVED in lines:
            self._stage(live, "uploaded")
        if steps.STAGED in lines:
            self._stage(live, "staged")
            live.step = "test"
        check(live, result)
        self._stage(live, "tested")
        found = distfacts.parse_matches(result.stdout)
        return [_rematch(p, found) for p in chosen]

    def _cut_over(self, live: Live) -> None:
        """`switch` every link of this host; the same script gives the lease back."""
        job = cast(DistJob, live.job)
        flip = diststeps.switch(
            job.deploy_root,
            self.work.dist_id,
            self.options.lock,
            self.chosen[job.host.name],
            self._ledgers(live, self.action),
            untested_ok=self.work.moving,
        )
        target = self.work.dist_id
        self._guard(live, lambda: self._activate(live, flip, target, seen=None, released=True))

    @property
    def action(self) -> str:
        """What the hosts' ledgers call this run."""
        return "dist-move" if self.work.moving else "dist"

    def _failure_lines(self, live: Live, action: str) -> list[str]:
        return super()._failure_lines(live, self.action)

    def _activated(self, live: Live, result: Result, target: str, *, released: bool) -> None:
        """As a release's, but a dist has no healthcheck: a switch put back failed itself."""
        super()._activated(live, result, target, released=released)
        if live.outcome.status == Status.REVERTED:
            live.outcome.failed_step = "activate"

    def run(self, jobs: Sequence[DistJob], uploads: Uploads) -> None:
        """Prepare every host, then cut over in gated batches (`Rollout.deploy`)."""
        self.deploy(jobs, self.work.dist_id, uploads)


def _rematch(p: Placement, found: dict[int, str]) -> Placement:
    if p.slot is None or p.slot not in found:
        return p
    return p.matched(found[p.slot]) or p


def _unchanged(
    chosen: Sequence[Placement], targets: Sequence[HostTarget], facts: Sequence[TargetFacts]
) -> bool:
    """Every link already points at its chosen version, and no version is to be made
    (a move leaves a target without versions out, so placements are matched by target)."""
    linked = {t: f.linked for t, f in zip(targets, facts, strict=True)}
    return all(p.slot is None and linked.get(p.target) == p.filename for p in chosen)
