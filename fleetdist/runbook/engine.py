"""Run a planned runbook: leases, batches, one failure budget, undo, and what `--resume` skips.

Host-first rolling: the hosts of a batch (canary first) each run every
step in order, `parallel` hosts at once.  Before the first batch the run
takes the per-app lease on every target host with its own run id (see
`deploying`), and gives it back when the run ends.  When a step fails on a
host, that host's completed steps that have an `undo` are undone in
reverse order, the host counts against the budget and stops.  The budget
(`max_failures`) is ONE count for the whole run: once more hosts failed
than it allows, no further host starts (hosts already running finish) and
no further batch either.  A failing canary stops the run too, as it stops
`deploy --canary`, however much budget is left.

Every step's `started`, `ok`, `failed`, `undone` is an event the journal
keeps (durably, before the next step), so `--resume` (see `resume`) knows
per host which step to start from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fleetdist.config.schema import Host
from fleetdist.errors import FleetdistError, TransportError
from fleetdist.orchestrate.work import parallel
from fleetdist.release.lease import LOCK_HELD
from fleetdist.report.events import Event, Reporter
from fleetdist.report.outcome import FleetOutcome
from fleetdist.runbook.actions import Planned
from fleetdist.runbook.deploying import HostDeploy, RecipeRun
from fleetdist.runbook.hoststeps import HostSteps, Prior
from fleetdist.runbook.model import Strategy
from fleetdist.runbook.outcome import HostResult, RunbookOutcome, StepResult
from fleetdist.transport.base import Result, Transport, TransportFactory


def _never_stale(message: str) -> str | None:
    return None


@dataclass
class Setup:
    """Everything a run needs, resolved and checked before any host is touched."""

    hosts: dict[str, Host]  # the target hosts, in order
    plans: dict[str, list[Planned]]
    strategy: Strategy
    recipes: dict[str, RecipeRun]
    leases: tuple[str, ...]  # the recipes whose lease the run holds on every target host
    factory: TransportFactory
    reporter: Reporter
    cwd: Path  # where `local` steps run: the project directory
    yes: bool = False  # --yes: `pause` steps go on without asking
    prior: dict[str, Prior] = field(default_factory=dict)
    stale: Callable[[str], str | None] = _never_stale


class Engine:
    """One run of a runbook.  Create one per run."""

    def __init__(self, setup: Setup, outcome: RunbookOutcome) -> None:
        self.s, self.outcome, self.emit = setup, outcome, setup.reporter
        self.transports: dict[str, Transport] = {}
        self.held: dict[str, list[str]] = {}  # host -> recipes whose lease it holds
        self.ready: set[str] = set()  # hosts connected with every lease taken
        self._lock = threading.Lock()
        self.taken: dict[str, float] = {}  # host -> when its leases were last taken or renewed
        self.busy: set[str] = set()  # hosts running their steps: only their own thread renews
        self.lost: dict[str, tuple[str, str, str]] = {}  # idle hosts whose renewal failed
        self._renewing = threading.Lock()
        self.allowed = setup.strategy.max_failures.allowed(len(setup.hosts))
        lease = min((setup.recipes[k].options.lock.lease for k in setup.leases), default=0)
        self.period = lease / 3 if lease else None  # renew a lease once this old
        deployers = {
            key: HostDeploy(
                run,
                fleet=FleetOutcome(run.run_id, "deploy", run.app, outcome.env, run.release_id),
                factory=setup.factory,
                reporter=setup.reporter,
            )
            for key, run in setup.recipes.items()
        }
        self.steps = HostSteps(
            factory=setup.factory,
            reporter=setup.reporter,
            transports=self.transports,
            cwd=setup.cwd,
            yes=setup.yes,
            deployers=deployers,
            renew=self._renew_own,
            renew_every=min(60.0, self.period or 60.0),
        )
        for name in setup.hosts:
            outcome.hosts[name] = HostResult(name)

    # -- the fleet ---------------------------------------------------------------

    def run(self) -> RunbookOutcome:
        names = list(self.s.hosts)
        todo = [n for n in names if self._prior(n).start < len(self.s.plans[n])]
        for name in names:
            if name not in todo:
                self._all_done(name)
        self.emit(Event("run_started", data={"hosts": names, "phase": "runbook"}))
        try:
            parallel(self._open, todo, self.s.strategy.parallel)
            if self._spent():
                self._abort("failure budget exceeded while taking the leases")
            else:
                self._batches(names, set(todo))
        finally:
            with self._renewing:  # after a second Ctrl-C some hosts may still be in a step:
                idle = [n for n in self.transports if n not in self.busy]  # they keep theirs
            parallel(self._close, idle, self.s.strategy.parallel)
            self.emit(Event("run_finished", data=self.outcome.to_json()))
        return self.outcome

    def _batches(self, names: list[str], todo: set[str]) -> None:
        split = self.s.strategy.batches.split(names)
        if split and self._canary_failed(split[0]):  # e.g. locked or unreachable at the start
            self._abort("canary failed", budget=False)
            return
        batches = [
            (planned, [n for n in batch if n in todo and n in self.ready])
            for planned, batch in enumerate(split)
        ]
        batches = [(planned, b) for planned, b in batches if b]
        for index, (planned, batch) in enumerate(batches):
            if index and self.s.strategy.pause:
                self._pause(self.s.strategy.pause)
            self._renew_idle()
            self.emit(Event("batch_started", data={"index": index, "hosts": batch, "verb": "run"}))
            self._run_batch(batch)
            self.emit(Event("batch_finished", data={"index": index}))
            if self._spent():
                self._abort("failure budget exceeded (max_failures)")
                return
            if planned == 0 and self._canary_failed(batch):  # not once the canary is done
                self._abort("canary failed", budget=False)
                return

    def _run_batch(self, batch: list[str]) -> None:
        """The batch's hosts, `parallel` at once.  On Ctrl-C each host finishes the step
        under way and stops there (the journal says so: `--resume` goes on from it)."""
        with ThreadPoolExecutor(max_workers=min(self.s.strategy.parallel, len(batch))) as pool:
            futures = [pool.submit(self._host, name) for name in batch]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                self.steps.stop.set()
                raise

    def _canary_failed(self, batch: list[str]) -> bool:
        """The canary batch is the run's probe, as for `deploy --canary`: any failure
        there stops the run whatever the budget still allows."""
        return bool(self.s.strategy.batches.canary) and any(
            self.outcome.hosts[n].failed for n in batch
        )

    def _spent(self) -> bool:
        """True once more hosts failed than the one budget of the run allows."""
        failed = sum(1 for h in self.outcome.hosts.values() if h.failed)
        return self.allowed is not None and failed > self.allowed

    def _abort(self, why: str, *, budget: bool = True) -> None:
        spec = self.s.strategy.max_failures.spec
        self.outcome.aborted = f"{why}: more than {spec} host(s) failed" if budget and spec else why
        self.emit(Event("aborted", message=self.outcome.aborted))

    def _prior(self, name: str) -> Prior:
        return self.s.prior.get(name) or Prior()

    def _all_done(self, name: str) -> None:
        """A host an earlier run of this run finished: reported, not touched."""
        result = self.outcome.hosts[name]
        result.status = "ok"
        result.steps = [StepResult(p.name, "done") for p in self.s.plans[name]]

    # -- leases ------------------------------------------------------------------

    def _open(self, name: str) -> None:
        """Connect to a target host and take the run's leases there."""
        host, result = self.s.hosts[name], self.outcome.hosts[name]
        try:
            transport = self.s.factory(host)
        except TransportError as exc:
            result.status, result.error = "unreachable", str(exc)
            return
        self.transports[name] = transport
        self.held[name] = []
        for key in self.s.leases:
            problem = self._lease(host, transport, self.s.recipes[key])
            if problem:
                result.status, result.failed_step, result.error = problem
                self.emit(Event("stage", name, "failed", result.error, {"step": "lease"}))
                return
            self.held[name].append(key)
        self.taken[name] = time.monotonic()
        self.ready.add(name)

    def _lease(
        self, host: Host, transport: Transport, run: RecipeRun
    ) -> tuple[str, str, str] | None:
        """Take one lease (taking over a provably dead run's); (status, step, error) if not."""
        try:
            ran = transport.run(run.lease_step(host.name).for_host(host).text)
            stale = self.s.stale(ran.stderr) if ran.exit_code == LOCK_HELD else None
            if stale:
                self.emit(Event("stage", host.name, "takeover", f"stale lease of run {stale}"))
                ran = transport.run(run.lease_step(host.name, stale).for_host(host).text)
        except TransportError as exc:
            return "unreachable", "lease", str(exc)
        return _lease_problem(host, ran)

    def _pause(self, seconds: float) -> None:
        """The pause between batches, renewing the waiting hosts' leases as it goes."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self.period or left))
            self._renew_idle()

    def _due(self, name: str) -> bool:
        """True if `name` holds leases taken more than a third of a lease ago."""
        return (
            self.period is not None
            and bool(self.held.get(name))
            and name in self.taken
            and time.monotonic() - self.taken[name] >= self.period
        )

    def _renew(self, name: str) -> tuple[str, str, str] | None:
        """Renew the host's leases (`lease_renew`, as a rollout does), so a long run does
        not outlive them; (status, step, error) if one was lost meanwhile."""
        host, transport = self.s.hosts[name], self.transports[name]
        for key in self.held[name]:
            try:
                ran = transport.run(self.s.recipes[key].renew_step(name).for_host(host).text)
            except TransportError as exc:
                return "unreachable", "lease", str(exc)
            if problem := _lease_problem(host, ran):
                return problem
        self.taken[name] = time.monotonic()
        return None

    def _renew_own(self, name: str) -> str | None:
        """Before each step of a running host, from its own thread (its transport is
        free then); the error if its lease is lost, which fails the step."""
        self._renew_idle()
        problem = self._renew(name) if self._due(name) else None
        return f"lease: {problem[2]}" if problem else None

    def _renew_idle(self) -> None:
        """Renew the leases of the hosts not running now (waiting for their batch, or
        done); one whose lease was lost fails as `locked` when its batch comes."""
        with self._renewing:
            due = [n for n in self.held if n not in self.busy and n not in self.lost]
            due = [n for n in due if self._due(n)]
            for name, problem in parallel(
                lambda n: (n, self._renew(n)), due, self.s.strategy.parallel
            ):
                if problem:
                    self.lost[name] = problem

    def _close(self, name: str) -> None:
        """Give the run's leases back (only if still ours), then close; best effort."""
        transport = self.transports[name]
        try:
            for key in self.held.get(name, []):
                transport.run(
                    self.s.recipes[key].release_step(name).for_host(self.s.hosts[name]).text
                )
        except FleetdistError:
            pass
        finally:
            transport.close()
            status = self.outcome.hosts[name].status
            self.emit(Event("host_done", name, data={"status": status}))

    # -- one host ------------------------------------------------------------------

    def _host(self, name: str) -> None:
        """Every step of one host from where it stands, undoing them if one fails."""
        result = self.outcome.hosts[name]
        with self._lock:
            if self._spent() or self.steps.stop.is_set():
                return  # skipped: the budget was spent (or Ctrl-C) before this host started
            with self._renewing:
                lost = self.lost.get(name)  # its lease expired while it waited, and was taken
                if lost is None:
                    self.busy.add(name)
            if lost is not None:
                result.status, result.failed_step, result.error = lost
                return
            result.status = "running"
        started = time.monotonic()
        try:
            records, done, failed = self.steps.run(name, self.s.plans[name], self._prior(name))
            result.steps = records
            if failed is None:
                result.status = "ok"
                return
            if failed.status == "interrupted":  # Ctrl-C: left as it is for --resume
                result.status = "interrupted"
                return
            result.status, result.failed_step, result.error = "failed", failed.name, failed.error
            self.steps.undo(name, done)
        finally:
            result.seconds = round(time.monotonic() - started, 3)
            with self._renewing:
                self.busy.discard(name)  # done: its leases are renewed with the idle ones


def _lease_problem(host: Host, ran: Result) -> tuple[str, str, str] | None:
    """(status, step, error) of a lease script that did not leave the lease ours."""
    if ran.exit_code == LOCK_HELD:
        return "locked", "lease", f"host {host.name}: {ran.tail()}"
    if not ran.ok:
        return "failed", "lease", f"host {host.name}: lease: {ran.tail()}"
    return None
