"""`become: true`: every script runs through `sudo -n -u USER`, secrets and uploads included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import HOSTS, Project

# A stand-in for sudo on the local fleet: records how it was called, then runs the
# command after `--` (as the same user: the privilege switch is proven over SSH).
FAKE_SUDO = """#!/bin/sh
echo "$1 $2 $3 $4 $5 $6 $7" >> "$SUDO_LOG"
while [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""
NEEDS_PASSWORD = """#!/bin/sh
echo "sudo: a password is required" >&2
exit 1
"""


def with_sudo(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    bindir = tmp_path / "sudo-bin"
    bindir.mkdir()
    (bindir / "sudo").write_text(body)
    (bindir / "sudo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "sudo.log"
    monkeypatch.setenv("SUDO_LOG", str(log))
    inventory = project.root / "inventories" / "local.yaml"
    text = inventory.read_text().replace(
        "  command_timeout: 300\n", "  command_timeout: 300\n  become: true\n  become_user: app_1\n"
    )
    inventory.write_text(text)
    return log


def test_every_script_goes_through_sudo(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = with_sudo(project, tmp_path, monkeypatch, FAKE_SUDO)
    project.write_recipe(env={"HELLO_GREETING": "hello", "TOKEN": "s3cr3t"}, secret_env=["TOKEN"])
    v1 = project.deploy()
    assert all(project.current(h) == v1 for h in HOSTS)
    calls = log.read_text().splitlines()
    assert calls and all(c == "-n -H -u app_1 -- sh -c" for c in calls)
    assert len(calls) == 2 * len(HOSTS), "prepare and activate, each through sudo"
    assert project.run("status").code == 0
    assert len(log.read_text().splitlines()) == 3 * len(HOSTS)
    plan = project.run("plan")
    assert "# as app_1: sudo -n -H -u app_1 -- sh -c SCRIPT, where SCRIPT is:" in plan.out
    assert "s3cr3t" not in plan.out


def test_sudo_that_wants_a_password_is_one_clear_line(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_sudo(project, tmp_path, monkeypatch, NEEDS_PASSWORD)
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 1
    [host] = result.json()["hosts"]
    assert host["failed_step"] == "become"
    assert "sudo wants a password to become app_1" in host["error"]


def test_become_user_must_be_a_user_name(project: Project) -> None:
    inventory = project.root / "inventories" / "local.yaml"
    inventory.write_text(inventory.read_text() + "hosts:\n  web01:\n    become_user: 'root; id'\n")
    result = project.run("status")
    assert result.code == 2
    assert "hosts.web01.become_user: 'root; id' is not a user name" in result.err


def test_exec_goes_through_sudo_too(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = with_sudo(project, tmp_path, monkeypatch, FAKE_SUDO)
    result = project.run("exec", "-H", "web01", "--", "echo", "hi there")
    assert result.code == 0, result.err
    assert log.read_text().splitlines() == ["-n -H -u app_1 -- sh -c"]
    assert "hi there" in result.out
