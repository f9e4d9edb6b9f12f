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
        assert shebang.startswith(f"#!/srv/apps/hello/releases/{bundle['release_id']}/venv/bin/")
