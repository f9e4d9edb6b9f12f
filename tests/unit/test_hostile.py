"""Hostile paths, release ids and env values stay inert: proven by the absence of PWNED.

Every value below would run `touch PWNED` (or worse) if fleetdist ever let
it reach a shell unquoted.  The deploy must still succeed, and the release
directory must carry the literal hostile name.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleetdist.release.command import assign, cmd, export, script
from fleetdist.transport.local import LocalTransport

from .conftest import HOSTS, REPO, Project

EVIL_ROOT = '/srv/-rf x/it\'s "q" $(touch PWNED) `touch PWNED`/hello'
EVIL_VERSION = "1.0 $(touch PWNED) 'x\" -rf"  # refused as a version (config.names)
ODD_VERSION = "1.0+-rf_x"  # the oddest the release id grammar lets through
EVIL_VALUE = "$(touch PWNED) `touch PWNED`; touch PWNED & 'it''s' \"q\" \\ \n-rf"
EVIL_FLEET = "fleet $(touch PWNED) `touch PWNED` 'q'"


def pwned(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        if (root / "PWNED").exists():
            found.append(root / "PWNED")
        found += [p for p in root.rglob("PWNED")]
    return found


@pytest.fixture
def hostile(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    project.fleet = tmp_path / EVIL_FLEET
    monkeypatch.setenv("FLEET_ROOT", str(project.fleet))
    project.write_recipe(
        version=ODD_VERSION,
        deploy_root=EVIL_ROOT,
        env={"EVIL": EVIL_VALUE, "TOKEN": "s3cr3t $(touch PWNED)"},
        secret_env=["TOKEN"],
        test=['printf "%s" "$EVIL" > evil.txt', 'printf "%s" "$TOKEN" > token.txt'],
        hooks={
            "before_activate": ['printf "%s" "$FLEETDIST_RELEASE" > release.txt'],
            "after_activate": ['test -f "$FLEETDIST_ROOT/current/evil.txt"'],
        },
        healthcheck='test "$(cat release.txt)" = "$FLEETDIST_RELEASE"',
    )
    return project


def test_hostile_deploy_and_rollback_stay_inert(hostile: Project, tmp_path: Path) -> None:
    project = hostile
    result = project.run("deploy", "--json")
    assert result.code == 0, result.err + result.out
    v1 = result.json()["release_id"]
    assert v1.startswith(ODD_VERSION + "-")
    for host in HOSTS:
        root = project.host_root(host, EVIL_ROOT)
        assert root.is_dir(), root
        assert os.readlink(root / "current") == f"releases/{v1}"
        assert (root / "releases" / v1).is_dir()
        assert (root / "releases" / v1 / "evil.txt").read_text() == EVIL_VALUE
        assert (root / "releases" / v1 / "token.txt").read_text() == "s3cr3t $(touch PWNED)"
        assert (root / "releases" / v1 / "release.txt").read_text() == v1
        assert [e["to"] for e in project.ledger_at(root)] == [v1]

    # A second hostile release, then rollback and status: still inert.
    project.bump("v2")
    v2 = project.deploy()
    assert project.run("rollback").code == 0
    status = project.run("status", "--json")
    assert status.code == 0
    for row in status.json()["hosts"]:
        assert (row["current"], row["previous"]) == (v1, v2)
    history = project.run("history", "--json")
    assert {e["to"] for e in history.json()["entries"]} == {v1, v2}

    assert pwned(tmp_path, Path.cwd()) == []
    assert not (REPO / "PWNED").exists()


def test_hostile_dry_run_masks_secrets_and_quotes(hostile: Project, tmp_path: Path) -> None:
    result = hostile.run("plan", "--json")
    assert result.code == 0, result.err
    for host in result.json()["hosts"]:
        scripts = "\n".join(s["script"] for s in host["steps"])
        assert "s3cr3t" not in scripts
        assert "export TOKEN=***" in scripts
        assert f"export EVIL={shlex.quote(EVIL_VALUE)}" in scripts
        assert f"R={shlex.quote(host['root'])}" in scripts
    assert not hostile.fleet.exists()
    assert pwned(tmp_path) == []


def test_hostile_failure_messages_stay_inert(hostile: Project, tmp_path: Path) -> None:
    hostile.write_recipe(test=["echo $(echo nope) >&2; exit 1"])
    result = hostile.run("deploy", "-H", "web01", "--json")
    assert result.code == 1
    [host] = result.json()["hosts"]
    assert host["failed_step"] == "test"
    assert pwned(tmp_path, Path.cwd()) == []


def test_rendered_fragments_run_in_sh_keep_values_literal(tmp_path: Path) -> None:
    values = [EVIL_ROOT, EVIL_VERSION, EVIL_VALUE, "-n", "--", "", "a\tb", "$HOME", "*"]
    for value in values:
        text = script(
            [assign("V", value), export("E", value), cmd("printf", "%s|%s", value, "$E")]
        ).text
        out = subprocess.run(
            ["sh", "-c", text], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
        assert out == f"{value}|$E"
    assert pwned(tmp_path) == []


def test_secret_values_are_in_no_script_text(
    hostile: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's text is a process's argv on the host: secrets come on stdin instead."""
    texts: list[str] = []
    real_run = LocalTransport.run

    def run(self: LocalTransport, script: str, **kw: Any) -> Any:
        texts.append(script)
        return real_run(self, script, **kw)

    monkeypatch.setattr(LocalTransport, "run", run)
    hostile.deploy()
    hostile.bump("v2")
    hostile.deploy()
    assert hostile.run("rollback").code == 0
    assert len(texts) >= 3 * len(HOSTS)
    assert not [t for t in texts if "s3cr3t" in t]
