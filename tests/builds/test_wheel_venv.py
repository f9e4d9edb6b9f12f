"""Wheels and venv bundles: offline installs, reproducible bytes, the cache, deploying in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BuildProject, make_build_project

from fleetdist.builders.formats import build_recipe
from fleetdist.config.loader import load_recipe

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def venv_project(tmp_path_factory: pytest.TempPathFactory, build_image: None) -> BuildProject:
    """hello with a venv bundle for a deploy root on this machine, built once."""
    base = tmp_path_factory.mktemp("venvproj")
    project = make_build_project(base / "project")
    project.recipe("hello", deploy_root=str(base / "deploy" / "hello"), formats=["wheel", "venv"])
    # One local host whose "/" is the real "/": the bundle runs where it was built for.
    (project.root / "inventories" / "here.yaml").write_text(
        yaml.safe_dump({"hosts": {"here": {"transport": "local", "local_root": "/"}}})
    )
    code, err = project.run("build", "--formats", "wheel,venv,tar.gz,zip")
    assert code == 0, err
    return project


def artifacts(project: BuildProject) -> dict[str, dict[str, object]]:
    rows = json.loads((project.dist / "artifacts.json").read_text())
    return {row["format"]: row for row in rows}


def test_artifacts_json_describes_every_build(venv_project: BuildProject) -> None:
    rows = artifacts(venv_project)
    assert set(rows) == {"wheel", "venv", "tar.gz", "zip"}
    for row in rows.values():
        assert {
            "app",
            "version",
            "release_id",
            "file",
            "size",
            "sha256",
            "recipe_hash",
            "machine",
            "built_at",
        } <= set(row)
        assert (venv_project.dist / str(row["file"])).stat().st_size == row["size"]
    assert rows["venv"]["machine"] == "bookworm" and rows["wheel"]["machine"] == "controller"
    assert (venv_project.dist / "logs" / "venv-bookworm.log").read_text().count("== done") == 1


def test_wheel_installs_offline_from_the_wheelhouse(
    venv_project: BuildProject, tmp_path: Path
) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "v")], check=True)
    pip = [str(tmp_path / "v" / "bin" / "python"), "-m", "pip", "install", "-q"]
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # no configured index either
    wheels = str(venv_project.dist / "wheels")
    subprocess.run([*pip, "--no-index", "--find-links", wheels, "hello"], check=True, env=env)
    out = subprocess.run(
        [str(tmp_path / "v" / "bin" / "hello"), "--version"], capture_output=True, text=True
    )
    assert out.stdout.strip() == "1.0.0", out.stderr


def test_same_tree_same_bytes_for_every_archive_format(
    venv_project: BuildProject, tmp_path: Path
) -> None:
    """A second checkout (other path, other mtimes) builds byte-identical artifacts."""
    other = make_build_project(tmp_path / "again")
    (other.root / "recipes" / "hello.yaml").write_bytes(
        (venv_project.root / "recipes" / "hello.yaml").read_bytes()
    )
    os.utime(other.app / "hello" / "__init__.py", (1, 1))
    code, err = other.run("build", "--formats", "wheel,venv,tar.gz,zip")
    assert code == 0, err
    first, second = artifacts(venv_project), artifacts(other)
    for fmt in ("tar.gz", "zip", "wheel", "venv"):
        assert first[fmt]["sha256"] == second[fmt]["sha256"], fmt
        assert first[fmt]["release_id"] == second[fmt]["release_id"]


def test_unchanged_rebuild_comes_from_the_cache(venv_project: BuildProject) -> None:
    before = artifacts(venv_project)
    lines: list[str] = []
    recipe = load_recipe(venv_project.root / "recipes" / "hello.yaml")
    built = build_recipe(recipe, venv_project.dist, ("wheel", "venv"), echo=lines.append)
    assert lines == [], "nothing rebuilt, nothing logged"
    after = artifacts(venv_project)
    for artifact in built:
        assert after[artifact.format]["built_at"] == before[artifact.format]["built_at"]
        assert after[artifact.format]["sha256"] == artifact.sha256


def test_venv_bundle_deploys_and_runs_its_tests_in_place(venv_project: BuildProject) -> None:
    bundle = venv_project.dist / str(artifacts(venv_project)["venv"]["file"])
    code, err = venv_project.run("deploy", "-r", "hello", "-i", "here", "--artifact", str(bundle))
    assert code == 0, err
    root = Path(str(load_recipe(venv_project.root / "recipes" / "hello.yaml").deploy_root))
    rid = str(artifacts(venv_project)["venv"]["release_id"])
    assert os.readlink(root / "current") == f"releases/{rid}"
    out = subprocess.run(
        [str(root / "current" / "venv" / "bin" / "hello"), "--version"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "1.0.0", out.stderr
    launcher = (root / "releases" / rid / "venv" / "bin" / "hello").read_text().splitlines()
    assert launcher[0] == "#!/bin/sh" and str(root) not in launcher[1], "relocatable"
