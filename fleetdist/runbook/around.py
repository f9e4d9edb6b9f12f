"""A recipe's `around_batch`: runbook steps around each batch's cut-over in a plain deploy.

`before` steps run on each host of a batch just before its flip (drain it
from the load balancer), `after` steps once its healthcheck passed (put it
back).  Same kinds and substitution as a runbook (`${host.name}`,
`${host.vars.X}`; no params, no deploy or rollback), resolved for every
host before anything runs, and shown by `deploy --dry-run` between the
prepare and the flip (`shown`).

When a host's steps fail:
- a `before` step: its completed `before` steps with an `undo` are undone
  (last first), it is not cut over, and it fails (`around_batch.before`);
- the flip itself (a hook or the healthcheck, reverted on the host): its
  `before` steps with an `undo` are undone, so a drained host is put back;
- an `after` step: its completed `after` steps with an `undo` are undone and
  it fails (`around_batch.after`); the release stays live there (its
  healthcheck passed), and `--on-failure rollback` treats it as any failure.
Failed hosts count against `--max-fail` like any other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetdist.config.schema import Host, Inventory
from fleetdist.orchestrate.work import Live, parallel
from fleetdist.report.events import Reporter
from fleetdist.report.outcome import Status
from fleetdist.runbook.actions import Planned, Scope, plan_host, render
from fleetdist.runbook.hoststeps import Completed, HostSteps
from fleetdist.runbook.model import StepSpec
from fleetdist.transport.base import TransportFactory


def plan_around(
    around: tuple[tuple[StepSpec, ...], tuple[StepSpec, ...]],
    hosts: Sequence[Host],
    inventory: Inventory,
) -> tuple[dict[str, list[Planned]], dict[str, list[Planned]]] | None:
    """Each host's `before` and `after` steps, resolved (a missing host var fails now)."""
    if not any(around):
        return None
    scope = Scope({}, inventory)
    before, after = (
        {h.name: _named(plan_host(steps, h, scope), when) for h in hosts}
        for steps, when in zip(around, ("before", "after"), strict=True)
    )
    return before, after


def _named(plans: list[Planned], when: str) -> list[Planned]:
    return [dataclasses.replace(p, name=f"{when}.{p.name}") for p in plans]


def _shown(plans: list[Planned]) -> list[dict[str, Any]]:
    """The dry run's entries for these steps (and their undo)."""
    return [
        {
            "name": f"around_batch.{p.name}",
            "script": render(p.action) + (f"\n# undo:\n{render(p.undo)}" if p.undo else ""),
        }
        for p in plans
    ]


class AroundBatch:
    """The `orchestrate.work.BatchHooks` of a deploy whose recipe has `around_batch`."""

    def __init__(
        self,
        plans: tuple[dict[str, list[Planned]], dict[str, list[Planned]]],
        *,
        cwd: Path,
        yes: bool,
        parallel: int,
    ) -> None:
        self.plans, self.cwd, self.yes, self.parallel = plans, cwd, yes, parallel
        self._before_done: dict[str, list[Completed]] = {}

    def shown(self, host: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A dry run's steps of `host` with these around its flip (the `activate` step)."""
        at = next((i for i, e in enumerate(entries) if e["name"] == "activate"), len(entries))
        before, after = _shown(self.plans[0][host]), _shown(self.plans[1][host])
        return [*entries[:at], *before, *entries[at : at + 1], *after, *entries[at + 1 :]]

    def _steps(self, lives: Sequence[Live], factory: TransportFactory, emit: Reporter) -> HostSteps:
        transports = {lv.job.host.name: lv.transport for lv in lives if lv.transport}
        return HostSteps(
            factory=factory, reporter=emit, transports=transports, cwd=self.cwd, yes=self.yes
        )

    def before(
        self, lives: Sequence[Live], factory: TransportFactory, reporter: Reporter
    ) -> dict[str, str]:
        steps = self._steps(lives, factory, reporter)

        def one(live: Live) -> tuple[str, str | None]:
            name = live.job.host.name
            _, done, failed = steps.run(name, self.plans[0][name])
            if failed is not None:
                steps.undo(name, done)
                return name, f"{failed.name}: {failed.error}"
            self._before_done[name] = done
            return name, None

        return {n: e for n, e in parallel(one, list(lives), self.parallel) if e}

    def after(
        self, lives: Sequence[Live], factory: TransportFactory, reporter: Reporter
    ) -> dict[str, str]:
        steps = self._steps(lives, factory, reporter)

        def one(live: Live) -> tuple[str, str | None]:
            name = live.job.host.name
            if live.outcome.status != Status.OK:  # its flip failed: put back what before did
                steps.undo(name, self._before_done.pop(name, []))
                return name, None
            _, done, failed = steps.run(name, self.plans[1][name])
            if failed is not None:
                steps.undo(name, done)
                return name, f"{failed.name}: {failed.error}"
            return name, None

        return {n: e for n, e in parallel(one, list(lives), self.parallel) if e}
