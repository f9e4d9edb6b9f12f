"""What an ad-hoc command (`fleetdist exec`) did on each host, and how it is shown.

`ExecOutcome` maps host -> `CommandResult` and turns that into the exit code
and the `--json` document.  `OutputPrinter` streams each host's lines as
they arrive, prefixed with its name: the host's stdout to our stdout (so
`fleetdist exec -- cat /etc/os-release | grep ...` works), its stderr, the
recap and every error to our stderr.  Host text is data: control characters
are neutralised and nothing is read as markup.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO

from fleetdist.errors import ExitCode
from fleetdist.report.console import clean, print_table
from fleetdist.report.events import Event
from fleetdist.report.outcome import Status


@dataclass
class CommandResult:
    """One host: `exit_code` is the command's own (None if it never ran)."""

    host: str
    status: Status = Status.SKIPPED
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0


@dataclass
class ExecOutcome:
    command: str  # as shown (quoted); what each host ran
    hosts: dict[str, CommandResult] = field(default_factory=dict)
    aborted: str | None = None  # why later batches never started, if they did not

    def exit_code(self) -> int:
        """3 aborted, else 1 if a command failed, else 5 if a host was unreachable, else 0."""
        statuses = {r.status for r in self.hosts.values()}
        if self.aborted:
            return ExitCode.ABORTED
        if Status.FAILED in statuses:
            return ExitCode.FAILED
        if Status.UNREACHABLE in statuses:
            return ExitCode.UNREACHABLE
        return ExitCode.OK

    def to_json(self) -> dict[str, object]:
        """The `exec` document (schema in README, "JSON output")."""
        return {
            "action": "exec",
            "command": self.command,
            "aborted": self.aborted,
            "hosts": [{**asdict(r), "status": r.status.value} for r in self.hosts.values()],
        }


class OutputPrinter:
    """A reporter printing each `output` event as `host | line`, names aligned.

    Workers report from their threads; a lock keeps every line whole.  With
    `to_stderr` (a `--json` run) both streams go to stderr, as all progress does.
    """

    def __init__(
        self, *, to_stderr: bool = False, muted: Callable[[], bool] = lambda: False
    ) -> None:
        self.width = 0
        self.to_stderr, self.muted = to_stderr, muted
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if event.kind == "run_started":
            self.width = max((len(h) for h in event.data.get("hosts", [])), default=0)
        if event.kind != "output" or not event.host or self.muted():
            return
        err = self.to_stderr or event.data.get("stream") == "stderr"
        line = f"{event.host:<{self.width}} | {clean(event.message)}"
        with self._lock:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)


def print_exec_recap(outcome: ExecOutcome, stream: TextIO | None = None) -> None:
    """Per host: result, the command's exit code, seconds; then each error, on stderr."""
    out = stream or sys.stderr
    rows = [
        (r.host, r.status.value, "" if r.exit_code is None else r.exit_code, f"{r.seconds:.1f}")
        for r in outcome.hosts.values()
    ]
    title = f"exec {outcome.command}"
    if outcome.aborted:
        title += f": ABORTED ({outcome.aborted})"
    print_table(("host", "result", "exit", "seconds"), rows, title, out)
    for r in outcome.hosts.values():
        if r.error:
            print(f"{r.host}: {clean(r.error)}", file=out)
