"""Tables of the read-only everyday verbs, `releases` and `runs`, from their JSON rows
(the same fields `--json` prints); every cell is shown as text, never as markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fleetdist.report.console import print_table

MARKS = ("current", "previous", "tested", "pending")
RUN_COLUMNS = ("run_id", "time", "action", "app", "env", "hosts", "state", "exit_code")


def print_releases(hosts: Sequence[Mapping[str, Any]]) -> None:
    """One line per release a host keeps (with its marks), then one per host that could not say."""
    print_table(
        ("host", "release", "staged", "marks", "error"),
        [
            (h["host"], k["id"], k["staged"], ",".join(m for m in MARKS if k[m]), None)
            for h in hosts
            for k in h["releases"]
        ]
        + [(h["host"], None, None, None, h["error"]) for h in hosts if h["error"]],
    )


def print_runs(runs: Sequence[Mapping[str, Any]]) -> None:
    print_table(RUN_COLUMNS, [tuple(r.get(k) for k in RUN_COLUMNS) for r in runs])
