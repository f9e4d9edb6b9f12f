"""A venv bundle built in a clean container deploys over real SSH and passes its checks there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import REPO, Project

pytestmark = pytest.mark.integration


def test_venv_bundle_deploys_over_ssh_and_runs_in_place(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = subprocess.run(["bash", str(REPO / "scripts" / "build-image.sh")], capture_output=True,
                           text=True, timeout=1200, check=False)  # fmt: skip
    assert image.returncode == 0, image.stderr[-500:]
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    project = Project(tmp_path / "p", fleet.inventory(tmp_path, services=("web01", "web02")))
    assert project.run("build", "--formats", "venv") == 0
    rows = json.loads((project.root / "dist" / "artifacts.json").read_text())
    bundle = next(r for r in rows if r["format"] == "venv")
    assert project.run("deploy", "--artifact", str(project.root / "dist" / bundle["file"])) == 0
    for host in ("web01", "web02"):
        out = fleet.exec(host, "/srv/apps/hello/current/venv/bin/python -m hello --version")
        assert out.returncode == 0 and out.stdout.strip() == "1.0.0", out.stderr
        shebang = fleet.exec(host, "head -1 /srv/apps/hello/current/venv/bin/hello").stdout
        assert shebang == "#!/bin/sh\n", "a relocatable launcher, not the build's path"
        out = fleet.exec(host, "/srv/apps/hello/current/venv/bin/hello --version")
        assert out.stdout.strip() == "1.0.0", out.stderr


def test_debs_deploy_over_ssh_side_by_side_and_roll_back(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(tmp_path / "p", fleet.inventory(tmp_path, services=("web03",)))
    debs = {}
    for version in ("1.0.0", "1.1.0"):
        monkeypatch.setenv("HELLO_VERSION", version)
        init = project.root / "app" / "hello" / "__init__.py"
        init.write_text(init.read_text().replace('"1.0.0"', f'"{version}"'))
        project.recipe(deploy_root="/opt/hello", formats=["deb"])
        assert project.run("build", "--formats", "deb") == 0
        debs[version] = next((project.root / "dist").glob(f"*/hello-{version}_*.deb"))
    try:
        for version, deb in debs.items():
            assert project.run("deploy", "--artifact", str(deb)) == 0
            out = fleet.exec("web03", "/opt/hello/current/venv/bin/python -m hello --version")
            assert out.stdout.strip() == version, out.stderr
        listed = fleet.exec("web03", "dpkg-query -W -f '${Package} ${Status}\\n' 'hello-*'").stdout
        assert "hello-1.0.0 install ok installed" in listed
        assert "hello-1.1.0 install ok installed" in listed
        dpkg_status = fleet.exec("web03", "stat -c %Y.%s /var/lib/dpkg/status").stdout
        assert project.run("rollback") == 0
        assert fleet.exec("web03", "stat -c %Y.%s /var/lib/dpkg/status").stdout == dpkg_status
        assert fleet.exec("web03", "readlink /opt/hello/current").stdout.strip() == "releases/1.0.0"
    finally:
        fleet.exec("web03", "dpkg --purge hello-1.0.0 hello-1.1.0; rm -rf /opt/hello")
