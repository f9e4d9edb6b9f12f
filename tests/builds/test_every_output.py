"""One recipe, every output: one `build` makes all nine formats, each with its own log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_build_project

pytestmark = pytest.mark.docker

EVERY = ("tar.gz", "tar.bz2", "tar.xz", "zip", "wheel", "venv", "pex", "deb", "rpm")


def test_one_recipe_builds_every_format_in_one_run(tmp_path: Path, build_image: None) -> None:
    project = make_build_project(tmp_path / "project")
    project.recipe("hello", deploy_root="/opt/hello", formats=list(EVERY))
    code, err = project.run("build")
    assert code == 0, err
    rows = json.loads((project.dist / "artifacts.json").read_text())
    assert [r["format"] for r in rows] == list(EVERY)
    assert len({r["release_id"] for r in rows if r["format"] not in ("deb", "rpm")}) == 1
    logs = sorted(p.name for p in (project.dist / "logs").iterdir())
    assert logs == [
        "deb+rpm-bookworm.log",
        "pex.log",
        "tar.bz2.log",
        "tar.gz.log",
        "tar.xz.log",
        "venv-bookworm.log",
        "wheel.log",
        "zip.log",
    ]
    for row in rows:
        assert (project.dist / row["file"]).stat().st_size == row["size"]
