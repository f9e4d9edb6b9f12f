"""What CI built, over real SSH: a tarball made with plain `tar`, deployed and rolled back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fleetdist.shipping.artifact import file_sha256

from .fleet import WEB, Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


def current(fleet: Fleet, host: str) -> str:
    return fleet.exec(host, ["readlink", f"{ROOT}/current"]).stdout.strip()


def test_ci_tarball_deploys_over_ssh_and_rolls_back(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = Project(tmp_path / "project", fleet.inventory(tmp_path, services=WEB[:2]))
    assert project.run("deploy") == 0
    before = {host: current(fleet, host) for host in WEB[:2]}
    (project.root / "app" / "CI_BUILD").write_text("ci 42\n")
    tarball = tmp_path / "hello-ci.tar.xz"
    argv = ["tar", "-cJf", str(tarball), "-C", str(project.root / "app"), "--owner=1234", "."]
    subprocess.run(argv, check=True)
    assert project.run("deploy", "--artifact", str(tarball), "--version", "2.0.0") == 0
    rid = f"2.0.0-{file_sha256(tarball)[:10]}"
    for host in WEB[:2]:
        assert current(fleet, host) == f"releases/{rid}"
        out = fleet.exec(host, f"cat {ROOT}/current/CI_BUILD; stat -c %u {ROOT}/current/CI_BUILD")
        assert out.stdout.split() == ["ci", "42", "0"], out.stderr
        ran = fleet.exec(host, f"cd {ROOT}/current && python3 -m hello --version")
        assert ran.stdout.strip() == "1.0.0", ran.stderr
    assert project.run("rollback") == 0
    assert {host: current(fleet, host) for host in WEB[:2]} == before
