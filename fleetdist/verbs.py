"""The everyday verbs around a deploy: `exec`, `releases`, `runs` (re-exported by `api`).

`exec_command` runs one ad-hoc command on the selected hosts (see
`orchestrate.adhoc`); it needs an inventory but no recipe.  `releases`
probes hosts exactly as `status` does (the read-only `steps.probe`, parsed
by `facts.parse_facts`), so it can never change a host; `runs` reads the
controller's run journals (`report.journal`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetdist.config.project import Project
from fleetdist.errors import ExitCode, UsageError
from fleetdist.orchestrate.adhoc import ExecPlan, command_of, run_command
from fleetdist.release import steps
from fleetdist.release.facts import Facts, parse_facts
from fleetdist.report.adhoc import ExecOutcome
from fleetdist.report.events import Reporter, silent
from fleetdist.report.journal import summaries
from fleetdist.session import (
    DeployOptions,
    Selection,
    jobs,
    load,
    load_hosts,
    look_on_each,
    transports,
)


def exec_command(
    sel: Selection,
    words: Sequence[str],
    opts: DeployOptions,
    *,
    shell: bool = False,
    reporter: Reporter = silent,
) -> ExecOutcome:
    """`fleetdist exec`: run one command on the selected hosts, batch by batch.

    The command is checked and quoted before any host is contacted, and
    each host's lines reach `reporter` as `output` events while it runs.
    """
    command = command_of(words, shell=shell)
    _, hosts = load_hosts(sel)
    plan = ExecPlan(opts.parallel, opts.batches, opts.max_fail)
    return run_command(hosts, command, factory=transports(opts), reporter=reporter, plan=plan)


def runs(project: Project, count: int = 20) -> list[dict[str, Any]]:
    """`fleetdist runs`: the newest runs recorded on this controller (see `journal.summaries`)."""
    if count < 1:
        raise UsageError(f"-n/--count: must be at least 1, got {count}")
    return summaries(project.runs, count)


@dataclass(frozen=True)
class KeptRelease:
    """One release directory on one host, and what it is to that host."""

    id: str
    staged: str  # when it was staged there (UTC, ISO 8601)
    current: bool = False
    previous: bool = False
    tested: bool = False  # passed its in-place tests on this host: it may go live
    pending: bool = False  # a flip to it was made and never confirmed


@dataclass
class HostReleases:
    host: str
    reachable: bool = True
    error: str | None = None
    releases: list[KeptRelease] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def kept(facts: Facts) -> list[KeptRelease]:
    """The releases a host reported, newest first, each with its marks."""
    pending = facts.pending.to_release if facts.pending else None
    return [
        KeptRelease(
            rid,
            datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds"),
            current=rid == facts.current,
            previous=rid == facts.previous,
            tested=rid in facts.tested,
            pending=rid == pending,
        )
        for rid, epoch in facts.releases
    ]


def releases(sel: Selection, opts: DeployOptions) -> list[HostReleases]:
    """`fleetdist releases`: every selected host's kept releases, probed read-only."""
    loaded = load(sel)
    probe = lambda job: steps.probe(job.ctx.layout)  # noqa: E731
    rows = []
    for seen in look_on_each(sel, opts, jobs(sel, loaded, ""), probe):
        row = HostReleases(seen.job.host.name, seen.reachable, seen.error)
        rows.append(row)
        if seen.stdout is not None:
            row.releases = kept(parse_facts(seen.stdout))
    return rows


def releases_exit_code(rows: Sequence[HostReleases]) -> int:
    """5 if a host was unreachable, else 1 if a probe failed, else 0."""
    if any(not r.reachable for r in rows):
        return ExitCode.UNREACHABLE
    return ExitCode.FAILED if any(r.error for r in rows) else ExitCode.OK
