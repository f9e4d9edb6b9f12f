"""`run --dry-run`: every step of every host, batch by batch, as it would be sent.

Built from the very `Planned` values a run executes: a command as its host
is sent it (`actions.render`), a deploy or rollback as the scripts
`deploying.RecipeRun` makes for the run (the same `orchestrate.plan`
functions a deploy and its dry run share), given what each host's
read-only probe reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetdist.release import steps
from fleetdist.release.facts import Facts
from fleetdist.runbook.actions import (
    Action,
    DeployRelease,
    Planned,
    RollbackRelease,
    other_host,
    render,
)
from fleetdist.runbook.deploying import RecipeRun
from fleetdist.runbook.model import Strategy

Probed = Mapping[tuple[str, str], Facts]  # (recipe, host) -> what the host's probe said


def batches(
    names: Sequence[str],
    strategy: Strategy,
    plans: Mapping[str, list[Planned]],
    recipes: Mapping[str, RecipeRun],
    leases: Sequence[str],
    facts: Probed,
) -> list[dict[str, Any]]:
    """The dry run's document: batches of hosts, each host's steps, and the lease it
    takes before the first batch and gives back when the run ends."""
    out = []
    for index, batch in enumerate(strategy.batches.split(list(names))):
        hosts = []
        for name in batch:
            lease = [_shown(recipes[k], name, recipes[k].lease_step(name)) for k in leases]
            back = [_shown(recipes[k], name, recipes[k].release_step(name)) for k in leases]
            hosts.append(
                {
                    "host": name,
                    "lease": "\n".join(lease) or None,
                    "steps": [_step(p, name, recipes, facts) for p in plans[name]],
                    "release": "\n".join(back) or None,
                }
            )
        out.append({"index": index, "hosts": hosts})
    return out


def _step(
    planned: Planned, host: str, recipes: Mapping[str, RecipeRun], facts: Probed
) -> dict[str, Any]:
    undo = planned.undo
    return {
        "name": planned.name,
        "on": other_host(planned.action, host),
        "script": show(planned.action, host, recipes, facts),
        "undo": show(undo, host, recipes, facts, undoing=planned.action) if undo else None,
    }


def show(
    action: Action,
    host: str,
    recipes: Mapping[str, RecipeRun],
    facts: Probed,
    *,
    undoing: Action | None = None,
) -> str:
    """One action as its host would be sent it."""
    if isinstance(action, DeployRelease):
        run = recipes[action.recipe]
        found = facts.get((action.recipe, host), Facts())
        return "\n".join(_shown(run, host, st) for st in run.deploy_steps(host, found))
    if isinstance(action, RollbackRelease):
        return _rollback(action, host, recipes[action.recipe], facts, undoing)
    return render(action)


def _rollback(
    action: RollbackRelease, host: str, run: RecipeRun, facts: Probed, undoing: Action | None
) -> str:
    found = facts.get((action.recipe, host), Facts())
    probe = _shown(run, host, steps.probe(run.jobs[host].ctx.layout))
    if isinstance(undoing, DeployRelease) and undoing.recipe == action.recipe:
        target, seen = found.current, run.release_id  # where the deploy found the host
        if target is None or target == run.release_id:
            return f"{probe}\n# then nothing: the deploy would find no other release here"
    else:
        target, seen = action.to or found.previous, found.current
        if target is None:
            return f"{probe}\n# then fail: no previous release to roll back to"
    return f"{probe}\n{_shown(run, host, run.rollback_step(host, target, seen))}"


def _shown(run: RecipeRun, host: str, step: steps.Step) -> str:
    return f"# {step.name}\n{step.for_host(run.jobs[host].host).render()}"
