"""Over real SSH: a killed controller never leaves a release live that failed its checks.

Issue 11 items 4 and 9: the controller is SIGKILLed while a host runs the
healthcheck (with and without the `--persist` connection daemon) or the
in-place tests; the host script finishes alone, later runs see what it did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "project", fleet.inventory(tmp_path))
    proj.recipe(test=["test -f hello/__init__.py"], healthcheck="test -f hello/__main__.py")
    return proj


def current(fleet: Fleet, host: str) -> str | None:
    out = fleet.exec(host, ["readlink", f"{ROOT}/current"])
    return out.stdout.strip().removeprefix("releases/") or None


def until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def cli(project: Project, *argv: str, version: str) -> tuple[subprocess.Popen[bytes], str]:
    """`fleetdist ARGV` as a child process, and the run id of its journal."""
    runs = project.root / ".fleetdist" / "runs"
    before = set(runs.glob("*.jsonl"))
    command = [sys.executable, "-m", "fleetdist.cli", argv[0], "--project", str(project.root)]
    command += ["-i", str(project.inventory), *argv[1:]]
    env = {**os.environ, "HELLO_VERSION": version}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    until(lambda: bool(set(runs.glob("*.jsonl")) - before), "the run journal")
    [journal] = set(runs.glob("*.jsonl")) - before
    return proc, journal.stem


def json_run(
    project: Project, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = project.run(*argv, "--json")
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("persist", ["0", "30"], ids=["direct", "persist"])
def test_controller_killed_during_the_healthcheck(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    persist: str,
) -> None:
    assert project.run("deploy", "-H", "web01", "--persist", persist) == 0
    old = current(fleet, "web01")
    project.recipe(
        test=["test -f hello/__init__.py"],
        healthcheck="touch /tmp/hc-started; sleep 3; false",
    )
    fleet.exec("web01", ["rm", "-f", "/tmp/hc-started"])
    proc, run = cli(project, "deploy", "-H", "web01", "--persist", persist, version="2.0.0")
    until(lambda: fleet.exec("web01", ["test", "-f", "/tmp/hc-started"]).returncode == 0, "hc")
    assert current(fleet, "web01") != old, "the flip happened before the healthcheck"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    pending = ["test", "!", "-e", f"{ROOT}/.fleetdist/pending"]
    until(lambda: fleet.exec("web01", pending).returncode == 0, "the host's own revert")
    assert current(fleet, "web01") == old, "a release that failed its healthcheck is not live"
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    code, resumed = json_run(project, capsys, "deploy", "--resume", run, "--persist", persist)
    assert code == 1, resumed
    assert [h["status"] for h in resumed["hosts"]] == ["reverted"]  # type: ignore[index]
    code, undo = json_run(project, capsys, "rollback", "--run", run, "--persist", persist)
    assert code == 0, undo
    assert [h["host"] for h in undo["hosts"]] == ["web01"]  # type: ignore[index]
    assert current(fleet, "web01") == old


def test_orphaned_prepare_keeps_the_app_until_it_ends(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert project.run("deploy", "-H", "web02", "--persist", "0") == 0
    project.recipe(test=["touch /tmp/test-started; sleep 4"], healthcheck="true")
    fleet.exec("web02", ["rm", "-f", "/tmp/test-started"])
    proc, run = cli(project, "deploy", "-H", "web02", "--persist", "0", version="2.0.0")
    started = ["test", "-f", "/tmp/test-started"]
    until(lambda: fleet.exec("web02", started).returncode == 0, "the in-place test")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    monkeypatch.setenv("HELLO_VERSION", "3.0.0")
    code, other = json_run(project, capsys, "deploy", "-H", "web02", "--persist", "0")
    assert code == 4, other
    assert "still running here" in str(other["hosts"][0]["error"])  # type: ignore[index]
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    code, resumed = json_run(
        project, capsys, "deploy", "--resume", run, "--persist", "0", "--lock-wait", "30"
    )
    assert code == 0, resumed
    assert current(fleet, "web02") == resumed["release_id"]
