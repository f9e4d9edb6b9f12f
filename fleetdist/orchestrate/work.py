"""The units a rollout works with: a host job, its options, its live state, the fan-out.

Kept apart from the runner so the read-only verbs (status, history) can
fan out over hosts with the same `parallel` and `HostJob` without the
rollout machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from fleetdist.config.schema import Host
from fleetdist.orchestrate.batches import (
    ALL_AT_ONCE,
    UNLIMITED,
    BatchPlan,
    FailureBudget,
    OnFailure,
)
from fleetdist.release.facts import Facts
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import Context
from fleetdist.report.events import Reporter
from fleetdist.report.outcome import HostOutcome
from fleetdist.transport.base import Transport, TransportFactory

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class HostJob:
    """One host and the pure context its scripts are rendered from."""

    host: Host
    ctx: Context


def _never_stale(message: str) -> str | None:
    return None


class BatchHooks(Protocol):
    """A recipe's `around_batch` (see `runbook.around`): steps run on each host of a
    cut-over batch, `before` just before its flip, `after` once its healthcheck passed.

    Each returns the hosts whose steps failed, with why (the rollout fails them);
    `after` is given every host of the batch that was flipped, and undoes the
    `before` steps of those whose flip failed."""

    def before(
        self, lives: Sequence[Live], factory: TransportFactory, reporter: Reporter
    ) -> dict[str, str]: ...

    def after(
        self, lives: Sequence[Live], factory: TransportFactory, reporter: Reporter
    ) -> dict[str, str]: ...


@dataclass(frozen=True)
class RolloutOptions:
    """How a rollout runs, every flag already parsed (`session.DeployOptions.parse`).

    `stale` names the run of a lease whose holder is provably dead, given the
    host's "locked by" message (see `orchestrate.stale`)."""

    lock: LockSpec
    parallel: int
    batches: BatchPlan = ALL_AT_ONCE
    max_fail: FailureBudget = UNLIMITED
    on_failure: OnFailure = OnFailure.HALT
    operator: str = "unknown"
    allow_untested: bool = False
    stale: Callable[[str], str | None] = _never_stale
    around: BatchHooks | None = None  # the recipe's around_batch steps, if it has any


class StepFailed(Exception):
    """Internal: a step exited non-zero; the message is the host's own last words."""


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """Map `fn` over `items` on at most `workers` threads, results in input order."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(fn, items))


@dataclass
class Live:
    """A host during a rollout: its open transport and what the probe found."""

    job: HostJob
    outcome: HostOutcome
    transport: Transport | None = None
    facts: Facts = field(default_factory=Facts)
    locked: bool = False
    step: str = "connect"  # the step under way, named in the outcome if it fails
