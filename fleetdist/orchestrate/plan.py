"""Pure: one host's job, the rollout's options and what its host reported -> its steps.

The rollout runs these lists and `--dry-run` prints them, built by the same
functions from the same inputs, so what a dry run shows is what a deploy
sends.  Only the cut-over depends on the host (its facts decide what is
pruned and which release `current` leaves); a dry run reads those facts
with the same read-only probe as `status`.
"""

from __future__ import annotations

from fleetdist.orchestrate.batches import OnFailure
from fleetdist.orchestrate.work import HostJob, RolloutOptions
from fleetdist.release import steps
from fleetdist.release.facts import Facts
from fleetdist.report import ledger


def host_ledgers(job: HostJob, options: RolloutOptions, run: str, action: str) -> steps.Ledgers:
    """The ledger lines an activating script may append, from/to filled in on the host."""
    fields = dict(app=job.ctx.app, env=job.ctx.env_name, run=run, who=options.operator)
    return steps.Ledgers(
        ok=ledger.template(action, result="ok", **fields),
        reverted=ledger.template(action, result="reverted", **fields),
        recovered=ledger.template("recover", result="reverted", **fields),
    )


def flip_back(
    job: HostJob, options: RolloutOptions, run: str, target: str, *, seen: str | None, release: bool
) -> steps.Step:
    """The activation that undoes a rollout on a host: `target` live again, from `seen`
    (`--on-failure rollback`, which gives the lease back, and a runbook's rollback undo,
    which keeps the run's)."""
    ledgers = host_ledgers(job, options, run, "rollback")
    return steps.activate(
        job.ctx,
        options.lock,
        target,
        action="rollback",
        ledger_ok=ledgers.ok,
        ledger_reverted=ledgers.reverted,
        ledger_recovered=ledgers.recovered,
        release=release,
        seen=seen,
        untested_ok=options.allow_untested,
    )


def prepare_step(
    job: HostJob, options: RolloutOptions, upload: steps.Upload, run: str
) -> steps.Step:
    """Phase 1 on one host: lease, recovery, facts, upload if needed, tests."""
    ledgers = host_ledgers(job, options, run, "deploy")
    return steps.prepare(job.ctx, options.lock, upload, ledgers=ledgers)


def holds_leases(options: RolloutOptions) -> bool:
    """`--on-failure rollback` keeps every lease until the rollout ends, to undo early hosts."""
    return options.on_failure is OnFailure.ROLLBACK


def cutover_steps(
    job: HostJob, options: RolloutOptions, facts: Facts, run: str
) -> list[steps.Step]:
    """Phase 2 on one host, given its facts: the flip (with the prune those facts
    call for), and under `--on-failure rollback` the lease given back at the end."""
    ctx, hold = job.ctx, holds_leases(options)
    ledgers = host_ledgers(job, options, run, "deploy")
    flip = steps.activate(
        ctx,
        options.lock,
        ctx.release_id,
        action="deploy",
        prune=steps.prune_candidates(facts, ctx.release_id, ctx.keep),
        ledger_ok=ledgers.ok,
        ledger_reverted=ledgers.reverted,
        ledger_recovered=ledgers.recovered,
        release=not hold,
        seen=facts.current,
        untested_ok=options.allow_untested,
    )
    return [flip, steps.finish(ctx.layout, options.lock, ())] if hold else [flip]


def deploy_steps(
    job: HostJob, options: RolloutOptions, upload: steps.Upload, facts: Facts, run: str
) -> list[steps.Step]:
    """Every step a deploy runs on this host when all goes well."""
    return [prepare_step(job, options, upload, run), *cutover_steps(job, options, facts, run)]
