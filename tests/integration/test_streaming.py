"""Over real SSH, directly and through the mux daemon (`--persist`): a host's output and
progress reach the controller while its prepare script still runs, not when it ends."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleetdist import api
from fleetdist.config.project import Project as FleetProject
from fleetdist.report.events import Event
from fleetdist.transport.mux import wire

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("persist", [0.0, 30.0], ids=["direct", "mux"])
def test_progress_arrives_while_the_prepare_script_runs(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, persist: float
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = Project(tmp_path / "project", fleet.inventory(tmp_path, services=("web01",)))
    project.recipe(test=["echo 'tests started [/srv]'", "sleep 2", "echo 'tests done' >&2"])
    events: list[tuple[float, Event]] = []
    sel = api.Selection(FleetProject(project.root), inventory=str(project.inventory))
    outcome = api.deploy(
        sel, api.DeployOptions(persist=persist), lambda e: events.append((time.monotonic(), e))
    )
    assert outcome.exit_code() == 0, outcome.to_json()
    assert wire.socket_path().exists() == (persist > 0), "the daemon carried the run"
    said = next(t for t, e in events if e.kind == "output" and e.message == "tests started [/srv]")
    tested = next(t for t, e in events if e.kind == "stage" and e.stage == "tested")
    assert tested - said > 1.5, "the line arrived as it was printed, before the script ended"
    progress = [e.stage for _, e in events if e.kind == "progress"]
    assert progress == ["uploading", "unpacking", "testing"]
    log = outcome.log_of("web01")
    assert log is not None
    text = log.read_text()
    assert "tests started [/srv]\ntests done\n" in text and "@@" not in text
