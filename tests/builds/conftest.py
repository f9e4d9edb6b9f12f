"""Build tests that start containers: Docker, the local build image, and projects to build.

The session fixture makes sure Docker answers and the build image exists
(scripts/build-image.sh, which builds the debootstrapped base image first
when needed; both are idempotent and cached).  Without Docker the tests are
skipped locally and fail under CI, as in tests/integration.

Projects are copies of the repository's example app in a temporary
directory, with recipes written by the tests; builds are slow enough (about
ten seconds per container) that fixtures build each thing once per module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetdist.cli import main

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "fleetdist/base:bookworm"
TEST_LABEL = "org.fleetdist.test"


def _unusable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"build machines unavailable: {reason}", pytrace=False)
    pytest.skip(f"build machines unavailable: {reason}")


@pytest.fixture(scope="session")
def build_image() -> None:
    """Docker answers and fleetdist/build:bookworm exists (built once, then cached)."""
    if shutil.which("docker") is None:
        _unusable("no docker command")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        _unusable("docker info fails (start it with scripts/docker-up.sh)")
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-image.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if proc.returncode != 0:
        _unusable(f"scripts/build-image.sh failed: {proc.stderr.strip()[-500:]}")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FLEETDIST_"):
            monkeypatch.delenv(name)
    for name in ("ENVPATH", "FLEET_ROOT", "DEPLOY_BASE", "SOURCE_DATE_EPOCH", "HELLO_VERSION"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class BuildProject:
    root: Path

    @property
    def app(self) -> Path:
        return self.root / "examples" / "hello"

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    def recipe(self, name: str, **fields: Any) -> None:
        data = {
            "app": "hello",
            "version": "1.0.0",
            "source": {"path": "../examples/hello", "exclude": ["*.egg-info"]},
            "test": ["venv/bin/python -m unittest discover -s tests -t . -q"],
            "healthcheck": "venv/bin/hello --version",
            **fields,
        }
        (self.root / "recipes" / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def set_app_version(self, version: str) -> None:
        """Change the example app's own version (what `hello --version` prints)."""
        for rel in ("hello/__init__.py", "pyproject.toml"):
            path = self.app / rel
            text = path.read_text()
            text = text.replace('version = "1.0.0"', f'version = "{version}"')
            text = text.replace('__version__ = "1.0.0"', f'__version__ = "{version}"')
            path.write_text(text)

    def run(self, *argv: str) -> tuple[int, str]:
        """`fleetdist VERB --project ROOT ...` in process; returns (exit code, stderr)."""
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([argv[0], "--project", str(self.root), *argv[1:]])
        return code, err.getvalue()


def make_build_project(root: Path) -> BuildProject:
    root.mkdir(parents=True)
    shutil.copytree(
        REPO / "examples",
        root / "examples",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    shutil.copytree(REPO / "env", root / "env")
    (root / "recipes").mkdir()
    (root / "inventories").mkdir()
    return BuildProject(root)


def docker(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


@pytest.fixture
def fresh_container() -> Iterator[Any]:
    """Start throw-away containers from the base image; all removed at the end."""
    names: list[str] = []

    def start(*mounts: str) -> str:
        name = f"fleetdist-test-{uuid.uuid4().hex[:10]}"
        argv = ["run", "-d", "--name", name, "--label", f"{TEST_LABEL}=1"]
        for mount in mounts:
            argv += ["-v", mount]
        docker(*argv, BASE_IMAGE, "sleep", "infinity")
        names.append(name)
        return name

    yield start
    for name in names:
        docker("rm", "-f", name, check=False)
