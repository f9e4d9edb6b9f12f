"""A PEX deployed to sshd hosts: one file, run in place there with the host's python3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


def test_pex_deploys_over_ssh_and_runs_in_place(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = Project(tmp_path / "p", fleet.inventory(tmp_path, services=("web04", "web05")))
    project.recipe(test=["./hello.pex --version"], healthcheck="./hello.pex --version")
    assert project.run("build", "--formats", "pex") == 0
    [row] = json.loads((project.root / "dist" / "artifacts.json").read_text())
    assert project.run("deploy", "--artifact", str(project.root / "dist" / row["file"])) == 0
    for host in ("web04", "web05"):
        listed = fleet.exec(host, f"ls -A {ROOT}/current/").stdout.split()
        assert listed == [".fleetdist-release", "hello.pex"]
        out = fleet.exec(host, f"cd {ROOT}/current && python3 hello.pex --version")
        assert out.returncode == 0 and out.stdout.strip() == "1.0.0", out.stderr
