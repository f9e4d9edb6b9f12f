"""Human output of `run`: the dry run's steps, and the recap of a run (stdout / stderr).

Host text (errors quote host output) is data: it goes through
`console.clean` and reaches rich only as text.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from fleetdist.report.console import clean, print_table
from fleetdist.runbook.outcome import RunbookOutcome


def print_plan(doc: dict[str, Any], stream: TextIO | None = None) -> None:
    """Every step each host would be sent, batch by batch, as `--dry-run` shows it."""
    out = stream or sys.stdout
    params = " ".join(f"{k}={v}" for k, v in doc["params"].items())
    print(f"# runbook {doc['runbook']}{': ' + params if params else ''}", file=out)
    for batch in doc["batches"]:
        names = ", ".join(h["host"] for h in batch["hosts"])
        print(f"\n# ===== batch {batch['index'] + 1}: {names}", file=out)
        for host in batch["hosts"]:
            if host["lease"]:
                print(f"\n# --- {host['host']}: lease (held for the whole run)", file=out)
                print(host["lease"], file=out)
            for step in host["steps"]:
                on = f" (on {step['on']})" if step["on"] else ""
                print(f"\n# --- {host['host']}: {step['name']}{on}\n{step['script']}", file=out)
                if step["undo"]:
                    print(f"# --- {host['host']}: {step['name']}: undo\n{step['undo']}", file=out)
            if host["release"]:
                print(f"\n# --- {host['host']}: the lease given back (when the run ends)", file=out)
                print(host["release"], file=out)


def print_recap(outcome: RunbookOutcome, stream: TextIO | None = None) -> None:
    """One row per host, then each failure's message and where the host's log is."""
    rows = [
        (
            h.host,
            h.status,
            h.failed_step,
            " ".join(f"{s.name}:{s.status}" for s in h.steps),
            f"{h.seconds:.1f}",
        )
        for h in outcome.hosts.values()
    ]
    title = f"runbook {outcome.runbook} ({outcome.env}) run {outcome.run_id}"
    if outcome.aborted:
        title += f": ABORTED ({outcome.aborted})"
    print_table(("host", "result", "failed step", "steps", "seconds"), rows, title, stream)
    for h in outcome.hosts.values():
        if h.error:
            log = outcome.log_dir / f"{h.host}.log" if outcome.log_dir else None
            where = f" (full output: {log})" if log and log.is_file() else ""
            print(f"{h.host}: {clean(h.error)}{where}", file=sys.stderr)
        for s in h.steps:
            if s.status == "undo-failed":
                print(f"{h.host}: {s.name}: {clean(s.error or '')}", file=sys.stderr)
