"""Shared fixtures for the unit suite: a throwaway project and a local fleet in tmp_path.

`project` copies the repository's recipes/, inventories/, env/ and
examples/ into a temporary directory, points FLEET_ROOT at a temporary
fleet (hosts web01..web03 are directories under it) and drives
`fleetdist.cli.main` in process.  Tests then look at the host directories
themselves: the `current` link, releases/, the ledger.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetdist.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
HOSTS = ("web01", "web02", "web03")
FAST_TEST = 'test -f hello/__init__.py && test "$HELLO_GREETING" = hello'
FAST_HEALTHCHECK = "test -f hello/__main__.py"


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Hide the developer's ~/.ssh/config and every FLEETDIST_* / ENVPATH setting."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("FLEETDIST_"):
            monkeypatch.delenv(name)
    for name in ("ENVPATH", "FLEET_ROOT", "DEPLOY_BASE", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Project:
    """A project directory plus its local fleet, and helpers to look at both."""

    root: Path
    fleet: Path
    capsys: pytest.CaptureFixture[str]

    # -- driving the CLI -------------------------------------------------------

    def run(self, verb: str, *args: str) -> Run:
        self.capsys.readouterr()
        code = main([verb, "--project", str(self.root), *args])
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def deploy(self, *args: str) -> str:
        """Deploy (must succeed) and return the release id."""
        result = self.run("deploy", "--json", *args)
        assert result.code == 0, result.err + result.out
        release: str = result.json()["release_id"]
        return release

    # -- editing the project ---------------------------------------------------

    @property
    def recipe_path(self) -> Path:
        return self.root / "recipes" / "hello.yaml"

    @property
    def app_dir(self) -> Path:
        return self.root / "examples" / "hello"

    def recipe(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.recipe_path.read_text())
        return data

    def write_recipe(self, **changes: Any) -> None:
        """Rewrite the recipe with `changes` applied (None deletes a key)."""
        data = self.recipe()
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.recipe_path.write_text(yaml.safe_dump(data, sort_keys=False))

    def bump(self, tag: str) -> None:
        """Change the source tree, so the next build gets a new release id."""
        (self.app_dir / "BUILD_TAG").write_text(tag + "\n")

    # -- looking at the hosts --------------------------------------------------

    def host_root(self, host: str, deploy_root: str = "/srv/apps/hello") -> Path:
        return self.fleet / host / deploy_root.lstrip("/")

    def current(self, host: str) -> str | None:
        link = self.host_root(host) / "current"
        if not link.is_symlink():
            return None
        target = os.readlink(link)
        assert target.startswith("releases/"), target
        return target.removeprefix("releases/")

    def previous(self, host: str) -> str | None:
        path = self.host_root(host) / ".fleetdist" / "previous"
        return path.read_text().strip() if path.exists() else None

    def releases(self, host: str) -> set[str]:
        folder = self.host_root(host) / "releases"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def ledger(self, host: str) -> list[dict[str, Any]]:
        return self.ledger_at(self.host_root(host))

    def ledger_at(self, root: Path) -> list[dict[str, Any]]:
        path = root / ".fleetdist" / "ledger.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        path = self.root / ".fleetdist" / "runs" / f"{run_id}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}


def make_project(root: Path) -> Path:
    """Copy the repository's example project (recipes, inventories, env, app) to `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("recipes", "inventories", "env", "examples"):
        shutil.copytree(REPO / name, root / name, ignore=_ignore)
    return root


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so nothing a test runs can land in the checkout."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def project(
    tmp_path: Path,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Project]:
    root = make_project(tmp_path / "project")
    fleet = tmp_path / "fleet"
    monkeypatch.setenv("FLEET_ROOT", str(fleet))
    proj = Project(root, fleet, capsys)
    # Shell-only checks keep the suite fast (no python3 start-up per host and
    # step); `real_recipe` puts the example's own unittest and healthcheck back.
    proj.write_recipe(test=[FAST_TEST], healthcheck=FAST_HEALTHCHECK)
    yield proj


@pytest.fixture
def real_recipe(project: Project) -> Project:
    shutil.copyfile(REPO / "recipes" / "hello.yaml", project.recipe_path)
    return project
