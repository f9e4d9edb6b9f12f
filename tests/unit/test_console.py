"""Progress output: a live table on terminals, one line per event elsewhere, never stdout."""

from __future__ import annotations

import io

from rich.console import Console

from fleetdist.report.console import LineReporter, LiveReporter, reporter_for
from fleetdist.report.events import Event

EVENTS = [
    Event("run_started", data={"hosts": ["web01", "web02"], "phase": "prepare"}),
    Event("stage", "web01", "probed"),
    Event("stage", "web02", "failed", "host web02: test: boom", {"step": "test"}),
    Event("batch_started", data={"index": 0, "hosts": ["web01"]}),
    Event("stage", "web01", "activated"),
    Event("aborted", message="canary failed"),
    Event("run_finished"),
]


def test_line_reporter_writes_one_line_per_event() -> None:
    out = io.StringIO()
    reporter = LineReporter(out)
    for event in EVENTS:
        reporter(event)
    assert out.getvalue().splitlines() == [
        "prepare: 2 host(s)",
        "[web01] probed",
        "[web02] FAILED test: host web02: test: boom",
        "cut over batch 1: 1 host(s)",
        "[web01] activated",
        "ABORTED: canary failed",
    ]


def test_live_reporter_counts_stages_and_prints_failures() -> None:
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, force_terminal=True, width=100))
    for event in EVENTS[:-1]:
        reporter(event)
    assert reporter.latest == {"web01": "activated", "web02": "failed"}
    reporter(EVENTS[-1])
    assert "FAILED test: host web02: test: boom" in out.getvalue()


def test_non_tty_stream_gets_plain_lines() -> None:
    assert isinstance(reporter_for(io.StringIO()), LineReporter)
