"""Progress as it happens: streamed stage and output events, each host's own time."""

from __future__ import annotations

import time
from pathlib import Path

from fleetdist import api
from fleetdist.config.project import Project as FleetProject
from fleetdist.report.events import Event

from .conftest import Project


def _deploy(project: Project, *flags: str) -> tuple[list[tuple[float, Event]], dict[str, float]]:
    events: list[tuple[float, Event]] = []
    sel = api.Selection(FleetProject(project.root))
    opts = api.DeployOptions(parallel=1, persist=0)
    fleet = api.deploy(sel, opts, lambda e: events.append((time.monotonic(), e)))
    assert fleet.exit_code() == 0, fleet.to_json()
    return events, {h: o.seconds for h, o in fleet.hosts.items()}


def test_output_and_stages_arrive_while_the_tests_run(project: Project) -> None:
    project.write_recipe(test=["echo 'running [/srv] tests'", "sleep 1"])
    events, _ = _deploy(project)
    web01 = [(t, e) for t, e in events if e.host == "web01"]
    said = next(t for t, e in web01 if e.kind == "output" and "running [/srv]" in e.message)
    tested = next(t for t, e in web01 if e.kind == "stage" and e.stage == "tested")
    assert tested - said > 0.8, "the line came as it was printed, not when the script ended"
    progress = [e.stage for _, e in web01 if e.kind == "progress"]
    assert progress == ["uploading", "unpacking", "testing"]
    output = [e for _, e in events if e.kind == "output"]
    assert output and not any(e.message.startswith("@@") for e in output)
    assert {e.data["stream"] for e in output} <= {"stdout", "stderr"}


def test_seconds_are_each_hosts_own_time(project: Project, tmp_path: Path) -> None:
    """Three hosts one after the other (--parallel 1), 0.5 s of tests each."""
    project.write_recipe(test=["sleep 0.5"])
    started = time.monotonic()
    _, seconds = _deploy(project)
    total = time.monotonic() - started
    assert total > 1.5
    for host, spent in seconds.items():
        assert 0.5 <= spent < 1.2, f"{host}: {spent}s of a {total:.1f}s run"
