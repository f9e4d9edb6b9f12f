"""`--resume`: what each host of a run already did, read back from the run's journal.

A step is done on a host when the last record of it is `ok`.  A host
resumes at its first step that is not done (never ran, failed, was
started by a controller that died before it finished, or was undone after
a later failure) and runs every step from there: the failed step is
retried, and whatever its failure undid is redone first.  A host with no
record at all (the budget kept it from starting) starts at its first step.

The journal is a file anyone on the controller can edit: release ids read
back from it (a deploy's `from`/`to`, what its undo flips back to) are
checked against `config.names` as they are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleetdist.config.names import release_id_problem
from fleetdist.errors import ConfigError
from fleetdist.runbook.hoststeps import Prior

_IDS = ("from", "to")


def progress(
    events: Sequence[dict[str, Any]], steps: Sequence[str], where: str
) -> dict[str, Prior]:
    """Per host: the first step to run, and what the journal kept of each step."""
    last: dict[str, dict[str, str]] = {}
    data: dict[str, dict[str, dict[str, Any]]] = {}
    current: dict[str, str] = {}
    for event in events:
        host, payload = event.get("host"), event.get("data")
        if event.get("kind") != "stage" or not isinstance(host, str):
            continue
        payload = payload if isinstance(payload, dict) else {}
        step = payload.get("runbook_step")
        if isinstance(step, str) and step in steps:
            last.setdefault(host, {})[step] = str(payload.get("state"))
            current[host] = step
            kept = data.setdefault(host, {}).setdefault(step, {})
            for key in ("recipe", "to", "changed"):
                if key in payload:
                    kept[key] = payload[key]
            if "from" in payload:
                kept.setdefault("from", payload["from"])
        elif event.get("stage") == "probed" and host in current:
            # a deploy step's prepare found the host on this release: its `from`,
            # kept even if the controller died before the step said ok
            found = data.setdefault(host, {}).setdefault(current[host], {})
            found.setdefault("from", payload.get("current"))
    for host, by_step in data.items():
        for step, kept in by_step.items():
            for key in _IDS:
                value = kept.get(key)
                if value is not None and (problem := release_id_problem(value)):
                    raise ConfigError(f"{where}: host {host}: step {step}: {key}: {problem}")
    return {
        host: Prior(_start(last.get(host, {}), steps), data.get(host, {}))
        for host in set(last) | set(data)
    }


def _start(states: dict[str, str], steps: Sequence[str]) -> int:
    for index, step in enumerate(steps):
        if states.get(step) != "ok":
            return index
    return len(steps)
