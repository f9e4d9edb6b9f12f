"""Over real SSH: `shared:` paths are linked into every release and outlive them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


def test_shared_dirs_survive_deploy_rollback_and_prune(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(tmp_path / "project", fleet.inventory(tmp_path))
    project.recipe(
        keep=2,
        shared={"dirs": ["log"], "files": ["conf/.env"]},
        test=['echo "$FLEETDIST_RELEASE" >> log/seen && test -f conf/.env'],
        healthcheck="test -d log",
    )
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        monkeypatch.setenv("HELLO_VERSION", version)
        assert project.run("deploy", "-H", "web03") == 0
    assert project.run("rollback", "-H", "web03") == 0
    seen = fleet.exec("web03", ["cat", f"{ROOT}/shared/log/seen"]).stdout.split()
    assert [s.split("-")[0] for s in seen] == ["1.0.0", "2.0.0", "3.0.0"]
    link = fleet.exec("web03", ["readlink", f"{ROOT}/current/log"]).stdout.strip()
    assert link == f"{ROOT}/shared/log"
    kept = fleet.exec("web03", ["ls", f"{ROOT}/releases"]).stdout.split()
    assert len(kept) == 2, "pruned to keep=2; shared/ is never pruned"
