"""Human output: live progress on a terminal, one line per event otherwise.

Everything goes to stderr, so stdout stays free for the recap table or, with
`--json`, for the one JSON document a runbook parses.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from fleetdist.orchestrate.outcome import FleetOutcome
from fleetdist.report.events import Event

if TYPE_CHECKING:  # rich is imported where it draws: a --json run never loads it
    from rich.console import Console
    from rich.table import Table


class LineReporter:
    """Plain `[host] stage` lines, for logs and CI (stderr is not a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line:
            print(line, file=self.stream, flush=True)


def describe(event: Event) -> str | None:
    if event.kind == "stage" and event.stage == "failed":
        return f"[{event.host}] FAILED {event.data.get('step', '')}: {event.message}"
    if event.kind == "stage":
        return f"[{event.host}] {event.stage}"
    if event.kind == "batch_started":
        hosts = event.data.get("hosts", [])
        return f"cut over batch {event.data.get('index', 0) + 1}: {len(hosts)} host(s)"
    if event.kind == "aborted":
        return f"ABORTED: {event.message}"
    if event.kind == "run_started":
        return f"{event.data.get('phase', 'run')}: {len(event.data.get('hosts', []))} host(s)"
    return None


class LiveReporter:
    """A live table of how many hosts reached each stage, redrawn in place."""

    STAGES = ("connected", "probed", "staged", "tested", "activated", "failed")

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.latest: dict[str, str] = {}
        self.total = 0
        self.note = ""
        self.live = Live(self._render(), console=console, refresh_per_second=8, transient=True)

    def _render(self) -> Table:
        from rich.table import Table

        counts = Counter(self.latest.values())
        table = Table(title=f"{len(self.latest)}/{self.total} hosts {self.note}".strip())
        for stage in self.STAGES:
            table.add_column(stage)
        table.add_row(*(str(counts.get(s, 0)) for s in self.STAGES))
        return table

    def __call__(self, event: Event) -> None:
        if event.kind == "run_started":
            self.total = len(event.data.get("hosts", []))
            self.live.start()
        elif event.kind == "stage" and event.host:
            self.latest[event.host] = event.stage or ""
            if event.stage == "failed":
                self.console.print(describe(event), highlight=False)
        elif event.kind in ("batch_started", "aborted"):
            self.note = describe(event) or ""
        elif event.kind == "run_finished":
            self.live.stop()
            return
        self.live.update(self._render())


def reporter_for(stream: TextIO | None = None) -> LineReporter | LiveReporter:
    stream = stream or sys.stderr
    if stream.isatty():
        from rich.console import Console

        return LiveReporter(Console(file=stream))
    return LineReporter(stream)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(file=sys.stdout, width=160).print(table)


def print_recap(fleet: FleetOutcome) -> None:
    rows = [
        (o.host, o.from_release, o.to_release, o.status.value, o.failed_step, f"{o.seconds:.1f}")
        for o in fleet.hosts.values()
    ]
    title = f"{fleet.action} {fleet.app} ({fleet.env}) run {fleet.run_id}"
    if fleet.aborted:
        title += f": ABORTED ({fleet.aborted})"
    print_table(("host", "from", "to", "result", "failed step", "seconds"), rows, title)
    for o in fleet.hosts.values():
        if o.error:
            print(f"{o.host}: {o.error}", file=sys.stderr)
