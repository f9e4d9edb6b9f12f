"""Over real SSH: `forward_agent: true` lets a host's scripts use the controller's ssh-agent."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway ssh-agent holding the fleet's client key."""
    out = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    sock = re.search(r"SSH_AUTH_SOCK=([^;]+);", out)
    pid = re.search(r"SSH_AGENT_PID=(\d+);", out)
    assert sock and pid, out
    monkeypatch.setenv("SSH_AUTH_SOCK", sock[1])
    try:
        subprocess.run(["ssh-add", "-q", str(fleet.key)], check=True, timeout=30)
        yield sock[1]
    finally:
        os.kill(int(pid[1]), 15)


@pytest.mark.parametrize("forward", [True, False], ids=["forwarded", "not-forwarded"])
def test_the_agent_reaches_the_tests_only_when_forwarded(
    fleet: Fleet,
    agent: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forward: bool,
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    extra = {"defaults": {"forward_agent": forward}}
    project = Project(tmp_path / "project", fleet.inventory(tmp_path, extra=extra))
    project.recipe(test=["ssh-add -l"], healthcheck="true")
    code = project.run("deploy", "-H", "web05", "--persist", "0")
    assert code == (0 if forward else 1)
