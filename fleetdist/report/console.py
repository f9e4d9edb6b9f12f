"""Human output: a live per-host view on terminals, one line per event otherwise.

Progress goes to stderr, so stdout stays free for the recap table or, with
`--json`, for the one JSON document a runbook parses.  Text that came from a
host (its output, error messages quoting it, release ids) is data: it goes
through `clean` and reaches rich only as `Text`, never as markup, so
`[/srv]` or `[web09]` in a test's output is printed as it was written.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from fleetdist.report.events import Event
from fleetdist.report.outcome import FleetOutcome

if TYPE_CHECKING:  # rich is imported where it draws: a --json run to a pipe never loads it
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.table import Table

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# States in which a host is being worked on: its clock runs (see `_Row`).
BUSY = frozenset(
    {
        "connected",
        "probed",
        "uploading",
        "unpacking",
        "testing",
        "activating",
        "uploaded",
        "staged",
        "running",
    }
)
FAILED = frozenset({"failed", "reverted", "rolled-back", "locked", "unreachable"})
STYLES = {
    **dict.fromkeys(FAILED, "bold red"),
    "tested": "green",
    "activated": "green",
    "ok": "green",
    "unchanged": "green",
    "skipped": "dim",
    "waiting": "dim",
}


def clean(text: str) -> str:
    """Host text made safe for a terminal: tabs to spaces, other control characters shown as ?.

    A test that prints escape sequences or carriage returns must not move the
    cursor inside the live view or rewrite the recap.
    """
    return _CONTROL.sub("?", text.replace("\t", "    "))


def describe(event: Event) -> str | None:
    """The plain one-line form of an event, or None for those not worth a line."""
    if event.kind == "stage" and event.stage == "failed":
        return f"[{event.host}] FAILED {event.data.get('step', '')}: {clean(event.message)}"
    if event.kind in ("stage", "progress"):
        return f"[{event.host}] {event.stage}"
    if event.kind == "batch_started":
        hosts = event.data.get("hosts", [])
        return f"{_batch_verb(event)} batch {event.data.get('index', 0) + 1}: {len(hosts)} host(s)"
    if event.kind == "aborted":
        return f"ABORTED: {clean(event.message)}"
    if event.kind == "run_started":
        return f"{event.data.get('phase', 'run')}: {len(event.data.get('hosts', []))} host(s)"
    return None


def _batch_verb(event: Event) -> str:
    """What a batch does: a rollout's cuts over; a runbook's (`"verb": "run"`) runs its steps."""
    return str(event.data.get("verb", "cut over"))


class LineReporter:
    """Plain `[host] stage` lines, for logs and CI (stderr is not a terminal).

    Host output is not repeated here: it is in the run log, whole.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.muted = False

    def __call__(self, event: Event) -> None:
        line = None if self.muted else describe(event)
        if line:
            print(line, file=self.stream, flush=True)

    def mute(self) -> None:
        """Print nothing more (Ctrl-C: the run is being abandoned)."""
        self.muted = True

    def close(self) -> None:
        """Nothing to tear down."""


@dataclass
class _Row:
    """One host in the live view; its clock runs only while it is being worked on."""

    state: str = "waiting"
    last: str = ""
    spent: float = 0.0
    since: float | None = None

    def move(self, state: str, now: float) -> None:
        if self.since is not None and state not in BUSY:
            self.spent += now - self.since
            self.since = None
        elif self.since is None and state in BUSY:
            self.since = now
        self.state = state

    def seconds(self, now: float) -> float:
        return self.spent + (now - self.since if self.since is not None else 0.0)


class LiveReporter:
    """A live table, one row per host: its state, its own time, its last line of output.

    Redrawn in place by rich's `Live` (which also ticks the clocks), sized to
    the terminal: the output column takes what is left of its width, and
    with more hosts than lines, busy and failed hosts are shown first.
    Failures are also printed above the table as they happen, so they stay
    on screen after it is gone; the recap follows on stdout.
    """

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.rows: dict[str, _Row] = {}
        self.phase = ""
        self.note = ""
        self.muted = False
        self._lock = threading.Lock()  # workers report while Live's thread redraws
        self.live: Live = Live(self, console=console, refresh_per_second=4, transient=True)

    def __call__(self, event: Event) -> None:
        if self.muted:
            return
        with self._lock:
            self._apply(event, time.monotonic())
        if event.kind == "run_started" and not self.live.is_started:
            self.live.start()
        elif event.kind == "stage" and event.stage == "failed":
            from rich.text import Text

            self.console.print(Text(describe(event) or "", style=STYLES["failed"]))
        elif event.kind == "run_finished":
            self.close()
        # No redraw per event: Live redraws four times a second, however chatty the hosts.

    def _apply(self, event: Event, now: float) -> None:
        row = self.rows.setdefault(event.host, _Row()) if event.host else None
        if event.kind == "run_started":
            self.phase = str(event.data.get("phase", ""))
            for host in event.data.get("hosts", []):
                self.rows.setdefault(host, _Row())
        elif event.kind == "batch_started":
            self.phase, self.note = _batch_verb(event), describe(event) or ""
            state = "activating" if self.phase == "cut over" else "running"
            for host in event.data.get("hosts", []):
                self.rows.setdefault(host, _Row()).move(state, now)
        elif event.kind == "aborted":
            self.note = describe(event) or ""
        elif row is not None and event.kind in ("stage", "progress") and event.stage:
            row.move(event.stage, now)
        elif row is not None and event.kind == "output":
            row.last = clean(event.message)
        elif row is not None and event.kind == "host_done":
            row.move(str(event.data.get("status", row.state)), now)

    def __rich__(self) -> RenderableType:
        with self._lock:
            return self._render(time.monotonic())

    def _render(self, now: float) -> Table:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        counts = Counter(row.state for row in self.rows.values())
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        title = " · ".join(p for p in (self.phase, f"{len(self.rows)} hosts: {summary}") if p)
        table = Table(title=Text(title), box=box.SIMPLE_HEAD, expand=True, title_justify="left")
        table.add_column("host", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("time", no_wrap=True, justify="right")
        table.add_column("output", no_wrap=True, overflow="ellipsis", ratio=1, style="dim")
        shown, hidden = self._visible()
        for host in shown:
            row = self.rows[host]
            table.add_row(
                Text(host),
                Text(row.state, style=STYLES.get(row.state, "yellow")),
                Text(f"{row.seconds(now):.1f}s"),
                Text(row.last),
            )
        if hidden:
            table.add_row(Text(f"… {hidden} more"), Text(""), Text(""), Text(""))
        if self.note:
            table.caption = Text(self.note, style="bold red" if "ABORTED" in self.note else "")
        return table

    def _visible(self) -> tuple[list[str], int]:
        """The hosts that fit on screen, busy and failed ones first; how many are left out."""
        room = max(3, self.console.height - 7)
        if len(self.rows) <= room:
            return list(self.rows), 0

        def rank(host: str) -> int:
            state = self.rows[host].state
            return 0 if state in BUSY else 1 if state in FAILED else 2

        chosen = set(sorted(self.rows, key=rank)[: room - 1])  # sorted is stable
        return [h for h in self.rows if h in chosen], len(self.rows) - len(chosen)

    def mute(self) -> None:
        """Draw nothing more (Ctrl-C); `close` then takes the view off the screen."""
        self.muted = True

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


ConsoleReporter = LineReporter | LiveReporter


def reporter_for(stream: TextIO | None = None) -> ConsoleReporter:
    """A live view if `stream` (default stderr) is a terminal, else plain lines."""
    stream = stream or sys.stderr
    if stream.isatty():
        from rich.console import Console

        return LiveReporter(Console(file=stream))
    return LineReporter(stream)


def _fitted(table: Any, stream: TextIO) -> Console:
    """A console for `table`: the terminal's width, or off a terminal the table's own."""
    from rich.console import Console

    console = Console(file=stream)
    if not console.is_terminal:
        console.width = 10_000
        console.width = max(40, console.measure(table).maximum)
    return console


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str = "",
    stream: TextIO | None = None,
) -> None:
    """A table on stdout; every cell is shown as text, whatever brackets it contains."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(clean(title)) if title else None)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(Text(clean("" if v is None else str(v))) for v in row))
    out = stream or sys.stdout
    _fitted(table, out).print(table)


def print_recap(fleet: FleetOutcome, stream: TextIO | None = None) -> None:
    """The per-host result table, then each failure's message and where its full log is."""
    rows = [
        (o.host, o.from_release, o.to_release, o.status.value, o.failed_step, f"{o.seconds:.1f}")
        for o in fleet.hosts.values()
    ]
    title = f"{fleet.action} {fleet.app} ({fleet.env}) run {fleet.run_id}"
    if fleet.aborted:
        title += f": ABORTED ({fleet.aborted})"
    print_table(("host", "from", "to", "result", "failed step", "seconds"), rows, title, stream)
    for o in fleet.hosts.values():
        if o.error:
            log = fleet.log_of(o.host)
            where = f" (full output: {log})" if log else ""
            print(f"{o.host}: {clean(o.error)}{where}", file=sys.stderr)
