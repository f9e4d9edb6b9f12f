"""Each host's whole output of a run: `<runs>/<run_id>/<host>.log`, beside the journal.

A failure is reported with its last lines only (`Result.tail`); this is
where the rest is.  A reporter like the journal: it appends `output` events
as they arrive, under a header naming the step, and flushes each line so a
killed controller leaves everything the hosts printed until then.  A host's
file is closed when the host is done (`host_done`), the rest when the run is
(`run_finished`).  Protocol lines never get here (the runner turns them into
progress events).
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from fleetdist.report.events import Event
from fleetdist.report.ledger import now


class RunLog:
    """A reporter writing `output` events to one log file per host, opened on first use."""

    def __init__(self, runs: Path, run_id: str) -> None:
        self.dir = runs / run_id
        self._open: dict[str, tuple[TextIO, object]] = {}  # host -> (file, its current step)

    def __call__(self, event: Event) -> None:
        if event.kind == "host_done" and event.host in self._open:
            self._open.pop(event.host)[0].close()
        elif event.kind == "run_finished":
            self.close()
        if event.kind != "output" or not event.host:
            return
        step = event.data.get("step")
        fh, last = self._open.get(event.host) or (self._file(event.host), None)
        if step != last:
            fh.write(f"--- {step} ({now()}) ---\n")
        fh.write(event.message + "\n")
        fh.flush()
        self._open[event.host] = (fh, step)

    def _file(self, host: str) -> TextIO:
        """Host names cannot contain `/` (see `config.hosts`), so this stays in `dir`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return (self.dir / f"{host}.log").open("a", encoding="utf-8", errors="replace")

    def close(self) -> None:
        for fh, _ in self._open.values():
            fh.close()
        self._open.clear()
