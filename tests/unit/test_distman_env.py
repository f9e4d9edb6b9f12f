"""`{VAR}` for dist.json: process environment, then distman.env (envstack), then defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetdist.config.distman import DistError, DistFileError
from fleetdist.distman.env import lookup, resolve

from .distman_repo import isolate, make_repo

ENV_FILE = """\
all: &all
  APP_NAME: from-file
  DEPLOY_ROOT: ${ROOT}/${ENV}
linux:
  <<: *all
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ENV", "ROOT", "DEPLOY_ROOT", "CACHE_ROOT", "APP_NAME", "ENVPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_defaults_follow_env(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = lookup(folder)
    home = folder / "home"
    assert values["ENV"] == "prod"
    assert values["DEPLOY_ROOT"] == f"{home}/.local/pipe/prod"
    assert values["CACHE_ROOT"] == f"{home}/.cache/pipe/prod"
    monkeypatch.setenv("ENV", "dev")
    assert lookup(folder)["DEPLOY_ROOT"] == f"{home}/.local/pipe/dev"


def test_distman_env_is_read_without_envstack_wrapper(folder, monkeypatch) -> None:
    (folder / "distman.env").write_text(ENV_FILE)
    monkeypatch.setenv("ROOT", "/srv/pipe")
    monkeypatch.setenv("ENV", "dev")
    values = lookup(folder)
    assert (values["APP_NAME"], values["DEPLOY_ROOT"]) == ("from-file", "/srv/pipe/dev")


def test_process_environment_wins_over_the_file(folder, monkeypatch) -> None:
    """As under `envstack distman -- fleetdist dist`: the values are already exported."""
    (folder / "distman.env").write_text(ENV_FILE)
    monkeypatch.setenv("APP_NAME", "from-shell")
    assert lookup(folder)["APP_NAME"] == "from-shell"


def test_malformed_env_file_is_one_line(folder) -> None:
    (folder / "distman.env").write_text("all: [unclosed\n")
    with pytest.raises(DistFileError, match=r"^distman\.env: "):
        lookup(folder)


def test_unknown_token_names_itself_and_where() -> None:
    with pytest.raises(DistError, match=r"^Cannot resolve token: NOPE in <dest> for x$"):
        resolve("{NOPE}/a", {}, "<dest> for x")


def test_running_under_envstack_works_too(tmp_path: Path, monkeypatch) -> None:
    """`envstack distman -- fleetdist dist`, as teams wrap distman today."""
    isolate(monkeypatch, tmp_path)
    repo = make_repo(tmp_path / "repo")
    envstack = Path(sys.executable).with_name("envstack")
    done = subprocess.run(
        [str(envstack), "distman", "--", sys.executable, "-m", "fleetdist.cli", "dist", "-y"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "ROOT": str(tmp_path / "root"), "ENVPATH": str(repo)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "root" / "dev" / "share" / "fixture" / "doc.txt").is_symlink()
