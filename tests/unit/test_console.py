"""Progress output: a live per-host view on terminals, one line per event elsewhere.

Host text is data: whatever brackets or escape codes it contains, it is
printed as written and never interpreted as rich markup.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from fleetdist import cli
from fleetdist.report.console import (
    LineReporter,
    LiveReporter,
    clean,
    print_recap,
    print_table,
    reporter_for,
)
from fleetdist.report.events import Event
from fleetdist.report.outcome import FleetOutcome, HostOutcome, Status

from .conftest import Project

HOSTILE = "[web09] no such dir [/srv] [bold]x[/bold]"
EVENTS = [
    Event("run_started", data={"hosts": ["web01", "web02"], "phase": "prepare"}),
    Event("stage", "web01", "connected"),
    Event("progress", "web01", "testing"),
    Event("output", "web01", message="Ran 3 tests [/srv]", data={"stream": "stderr"}),
    Event("stage", "web01", "probed"),
    Event("stage", "web02", "failed", f"host web02: test: {HOSTILE}", {"step": "test"}),
    Event("batch_started", data={"index": 0, "hosts": ["web01"]}),
    Event("stage", "web01", "activated"),
    Event("aborted", message="canary failed"),
    Event("run_finished"),
]
COLOUR = re.compile(r"\x1b\[[0-9;]*3[0-7]m")  # a foreground colour
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, height=30), out


def test_line_reporter_writes_one_line_per_event_and_no_host_output() -> None:
    out = io.StringIO()
    reporter = LineReporter(out)
    for event in EVENTS:
        reporter(event)
    assert out.getvalue().splitlines() == [
        "prepare: 2 host(s)",
        "[web01] connected",
        "[web01] testing",
        "[web01] probed",
        f"[web02] FAILED test: host web02: test: {HOSTILE}",
        "cut over batch 1: 1 host(s)",
        "[web01] activated",
        "ABORTED: canary failed",
    ]


def test_a_runbook_or_exec_batch_is_not_called_a_cut_over() -> None:
    out = io.StringIO()
    LineReporter(out)(Event("batch_started", data={"index": 1, "hosts": ["a"], "verb": "run"}))
    assert out.getvalue() == "run batch 2: 1 host(s)\n"


def test_live_reporter_prints_host_text_as_written() -> None:
    """`[/srv]` used to kill the run with MarkupError, `[web09]` vanished as a tag."""
    console, out = terminal()
    reporter = LiveReporter(console)
    for event in EVENTS:
        reporter(event)
    text = out.getvalue()
    assert f"FAILED test: host web02: test: {HOSTILE}" in text
    assert not reporter.live.is_started, "run_finished takes the view down"


def test_live_view_shows_state_time_and_last_output_per_host() -> None:
    console, _ = terminal(width=60)
    reporter = LiveReporter(console)
    for event in EVENTS[:4]:
        reporter(event)
    with console.capture() as captured:
        console.print(reporter.__rich__())
    shown = captured.get()
    row = next(line for line in shown.splitlines() if "web01" in line)
    assert "testing" in row and re.search(r"\d+\.\ds", row)
    assert "Ran 3 tests" in row
    assert "waiting" in next(line for line in shown.splitlines() if "web02" in line)
    assert all(len(line) <= 60 for line in ESCAPES.sub("", shown).splitlines()), "fits the width"
    reporter.close()


def test_a_hosts_clock_runs_only_while_it_is_worked_on() -> None:
    reporter = LiveReporter(terminal()[0])
    reporter._apply(Event("stage", "web01", "connected"), now=10.0)
    reporter._apply(Event("stage", "web01", "tested"), now=12.5)
    assert reporter.rows["web01"].seconds(now=100.0) == 2.5  # waiting for its batch
    reporter._apply(Event("batch_started", data={"hosts": ["web01"]}), now=100.0)
    assert reporter.rows["web01"].seconds(now=101.0) == 3.5


def test_large_fleets_show_busy_and_failed_hosts_first() -> None:
    reporter = LiveReporter(Console(file=io.StringIO(), force_terminal=True, height=12))
    hosts = [f"web{i:02d}" for i in range(1, 41)]
    reporter._apply(Event("run_started", data={"hosts": hosts}), now=0.0)
    reporter._apply(Event("stage", "web33", "failed"), now=1.0)
    reporter._apply(Event("progress", "web40", "testing"), now=1.0)
    shown, hidden = reporter._visible()
    assert {"web33", "web40"} <= set(shown) and shown == sorted(shown)
    assert len(shown) + hidden == 40 and hidden > 0


def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    def failure_output() -> str:
        console, out = terminal()
        reporter = LiveReporter(console)
        for event in EVENTS:
            reporter(event)
        return out.getvalue()

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert COLOUR.search(failure_output()), "failures are coloured"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not COLOUR.search(failure_output())


def test_control_characters_from_hosts_cannot_move_the_cursor() -> None:
    assert clean("a\x1b[2Jb\rc\td") == "a?[2Jb?c    d"


def test_tables_are_never_markup_and_off_a_terminal_never_wrap() -> None:
    out = io.StringIO()
    long_error = "x" * 200 + " [/srv]"
    print_table(("host", "error"), [("[web09]", long_error)], title="[bold]t[/bold]", stream=out)
    text = out.getvalue()
    assert "[web09]" in text and "[bold]t[/bold]" in text
    assert any(long_error in line for line in text.splitlines()), "one row, one line"


def test_recap_names_each_failed_hosts_full_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = FleetOutcome("RUN", "deploy", "hello", "prod", "1.0.0-abc", log_dir=tmp_path)
    (tmp_path / "web02.log").write_text("everything\n")
    fleet.hosts["web02"] = HostOutcome("web02", Status.FAILED, error=f"host web02: {HOSTILE}")
    print_recap(fleet)
    err = capsys.readouterr().err
    assert f"web02: host web02: {HOSTILE} (full output: {tmp_path}/web02.log)" in err


def test_non_tty_stream_gets_plain_lines() -> None:
    assert isinstance(reporter_for(io.StringIO()), LineReporter)


def test_terminal_deploy_survives_markup_in_test_output(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on a console forced to terminal mode, as an operator would see it."""
    console, out = terminal(width=80)
    monkeypatch.setattr(cli, "reporter_for", lambda stream=None: LiveReporter(console))
    project.write_recipe(test=[f"echo '{HOSTILE}' >&2; exit 1"])
    result = project.run("deploy")
    assert result.code == 1, result.err
    shown = out.getvalue()
    assert "[web01] FAILED" in shown and "[/srv]" in shown
    assert "@@" not in shown + result.out + result.err
    assert "web01" in result.out, "the recap is printed"
