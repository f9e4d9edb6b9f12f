"""Over real SSH with non-root users: `become` runs every script as root through `sudo -n`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


def project_as(fleet: Fleet, tmp_path: Path, user: str, **settings: object) -> Project:
    extra = {"defaults": {"user": user, **settings}}
    proj = Project(tmp_path / "project", fleet.inventory(tmp_path, extra=extra))
    proj.recipe(test=['test "$(id -u)" = 0 && test -f hello/__init__.py'], healthcheck="true")
    return proj


def test_a_non_root_user_deploys_as_root_with_become(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = project_as(fleet, tmp_path, "deploy", become=True)
    assert project.run("deploy", "-H", "web04") == 0
    owner = fleet.exec("web04", ["stat", "-c", "%U", f"{ROOT}/current/"]).stdout.strip()
    assert owner == "root"
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    assert project.run("deploy", "-H", "web04") == 0
    assert project.run("rollback", "-H", "web04") == 0
    assert project.run("status", "-H", "web04") == 0


def test_without_become_the_same_user_cannot_write_the_root(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = project_as(fleet, tmp_path, "deploy")
    assert project.run("deploy", "-H", "web04") == 1
    assert fleet.exec("web04", ["test", "-e", f"{ROOT}/current"]).returncode != 0


def test_sudo_that_asks_for_a_password_fails_in_one_line(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = project_as(fleet, tmp_path, "ask", become=True)
    capsys.readouterr()
    assert project.run("deploy", "-H", "web04", "--json") == 1
    [host] = json.loads(capsys.readouterr().out)["hosts"]
    assert host["failed_step"] == "become"
    assert "sudo wants a password to become root" in host["error"]
    assert "give ask passwordless sudo" in host["error"]
