"""The checks .ci/run makes before any test (scripts/lint.sh): one list, failing fast.

`.ci/run`, `inv lint` and the pre-commit hooks all run scripts/lint.sh, so
the checks are defined once.  Each test runs the real script, on the
repository itself or on a copy of it with one flaw added.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

CHECKS = ["ruff-check", "ruff-format", "mypy", "shellcheck"]
needs_shellcheck = pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck missing (scripts/setup.sh installs it)"
)


def lint(repo: Path, *checks: str) -> subprocess.CompletedProcess[str]:
    """scripts/lint.sh of `repo`, with this interpreter's ruff and mypy on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    argv = [str(repo / "scripts" / "lint.sh"), *checks]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """What lint.sh looks at (package, scripts, .ci, pyproject.toml), copied."""
    repo = tmp_path / "repo"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("fleetdist", "scripts", ".ci"):
        shutil.copytree(REPO / name, repo / name, ignore=skip)
    shutil.copy(REPO / "pyproject.toml", repo)
    return repo


@needs_shellcheck
def test_every_shell_script_passes_shellcheck() -> None:
    result = lint(REPO, "shellcheck")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_shellcheck
def test_shellcheck_warning_in_a_package_script_fails_the_check(copy: Path) -> None:
    (copy / "fleetdist" / "builders" / "sh" / "zz.sh").write_text(
        "# shellcheck shell=dash\ncd /nowhere\necho here\n"
    )
    result = lint(copy, "shellcheck")
    assert result.returncode == 1
    assert "zz.sh" in result.stdout and "SC2164" in result.stdout
    assert result.stderr.splitlines()[-1] == "lint: shellcheck failed"


def test_a_ruff_error_stops_before_the_other_checks(copy: Path) -> None:
    (copy / "fleetdist" / "zz.py").write_text("import os\n")
    result = lint(copy)
    assert result.returncode == 1
    assert "F401" in result.stdout
    assert result.stderr.splitlines() == ["lint: ruff-check", "lint: ruff-check failed"]


def test_unknown_check_exits_2_and_runs_nothing() -> None:
    result = lint(REPO, "mypy", "pylint")
    assert result.returncode == 2
    assert result.stderr == f"lint: unknown check 'pylint' (known: {' '.join(CHECKS)})\n"


def test_ci_and_pre_commit_run_the_same_checks_before_the_tests() -> None:
    listed = re.search(r"^ALL=\((.*)\)$", (REPO / "scripts" / "lint.sh").read_text(), re.M)
    assert listed is not None and listed.group(1).split() == CHECKS
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    assert [h["entry"] for h in hooks] == [f"scripts/lint.sh {c}" for c in CHECKS]
    assert all(h["language"] == "system" and h["pass_filenames"] is False for h in hooks)
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    assert commands[-3:] == ["scripts/setup.sh", "scripts/lint.sh", "exec scripts/test.sh -q"]
