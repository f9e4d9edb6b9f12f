"""envstack environments (`--env`) and `{VAR}` expansion, with the real env/*.env files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetdist.config.env import expand, load_env
from fleetdist.errors import ConfigError

from .conftest import Project


def stack(*lines: str) -> str:
    """An envstack file with `lines` for every platform."""
    body = "".join(f"  {line}\n" for line in lines)
    return f"all: &all\n{body}linux:\n  <<: *all\ndarwin:\n  <<: *all\n"


def roots(project: Project, *args: str) -> set[str]:
    result = project.run("plan", "--json", *args)
    assert result.code == 0, result.err
    return {host["root"] for host in result.json()["hosts"]}


def test_dev_and_prod_resolve_deploy_base_differently(project: Project) -> None:
    assert load_env("prod", project.root)["DEPLOY_BASE"] == "/srv/apps"
    assert load_env("dev", project.root)["DEPLOY_BASE"] == "/srv/apps-dev"
    assert load_env("dev", project.root)["ENV"] == "dev"


def test_env_files_include_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "default.env").write_text(stack("SHARED: base", "DEPLOY_BASE: /d"))
    (tmp_path / "qa.env").write_text("include: [default]\n" + stack("DEPLOY_BASE: /qa"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENVPATH", str(tmp_path))
        env = load_env("qa", tmp_path / "unused")
    assert env["DEPLOY_BASE"] == "/qa"
    assert env["SHARED"] == "base"


def test_deploy_roots_follow_the_env(project: Project) -> None:
    prod = roots(project, "--env", "prod")
    dev = roots(project, "--env", "dev")
    assert prod == {str(project.fleet / h / "srv/apps/hello") for h in ("web01", "web02", "web03")}
    assert dev == {
        str(project.fleet / h / "srv/apps-dev/hello") for h in ("web01", "web02", "web03")
    }


def test_dev_deploy_lands_under_apps_dev(project: Project) -> None:
    rid = project.deploy("--env", "dev", "-H", "web01")
    assert (project.host_root("web01", "/srv/apps-dev/hello") / "current").is_symlink()
    assert (project.host_root("web01", "/srv/apps-dev/hello") / "releases" / rid).is_dir()
    assert not project.host_root("web01").exists()


def test_process_environment_overrides_env_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_BASE", "/opt/override")
    assert roots(project, "--env", "dev") == {
        str(project.fleet / h / "opt/override/hello") for h in ("web01", "web02", "web03")
    }


def test_fleet_root_from_env_file_when_not_in_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without FLEET_ROOT in the environment, the env file's default `.fleet` applies."""
    monkeypatch.delenv("FLEET_ROOT")
    monkeypatch.chdir(project.root)
    assert roots(project, "--env", "dev") == {
        str(project.root / ".fleet" / h / "srv/apps-dev/hello") for h in ("web01", "web02", "web03")
    }


def test_envpath_points_elsewhere(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    other = project.root / "other-env"
    other.mkdir()
    (other / "prod.env").write_text(stack("DEPLOY_BASE: /elsewhere", "HELLO_VERSION: 9"))
    monkeypatch.setenv("ENVPATH", str(other))
    assert all(r.endswith("/elsewhere/hello") for r in roots(project))
    assert os.environ["ENVPATH"] == str(other)  # left as it was found


def test_envpath_is_restored_after_loading(project: Project) -> None:
    load_env("dev", project.root)
    assert "ENVPATH" not in os.environ


def test_broken_env_file_is_a_config_error(project: Project) -> None:
    broken = project.root / "env" / "broken.env"
    broken.write_text("all: [unclosed\n")
    result = project.run("status", "--json", "--env", "broken")
    assert result.code == 2
    assert result.json()["error"]["type"] == "ConfigError"  # and nothing from envstack
    assert result.err.startswith(f"fleetdist: error: {broken}:2: malformed env file: ")
    assert result.err.count("\n") == 1
    assert not project.fleet.exists()


def test_broken_included_env_file_does_not_fall_back(project: Project) -> None:
    """A broken default.env must not leave dev with only its own values."""
    default = project.root / "env" / "default.env"
    default.write_text("all: &all\n  DEPLOY_BASE: [oops\n")
    result = project.run("status", "--env", "dev")
    assert result.code == 2
    assert str(default) in result.err and "malformed env file" in result.err
    assert not project.fleet.exists()


def test_second_load_in_one_process_keeps_includes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """envstack remembers included stacks process-wide; every load must see default.env."""
    (tmp_path / "default.env").write_text(stack("SHARED: base"))
    for name in ("one", "two"):
        (tmp_path / f"{name}.env").write_text("include: [default]\n" + stack(f"OWN: {name}"))
    monkeypatch.setenv("ENVPATH", str(tmp_path))
    for _ in range(2):
        for name in ("one", "two"):
            env = load_env(name, tmp_path)
            assert (env["OWN"], env.get("SHARED")) == (name, "base")


def test_expand_replaces_and_names_missing_variables() -> None:
    assert expand("{A}/x/{B}", {"A": "1", "B": "$(two)"}, where="w") == "1/x/$(two)"
    assert (
        expand("no placeholders $SHELL {1x} {}", {}, where="w") == "no placeholders $SHELL {1x} {}"
    )
    with pytest.raises(
        ConfigError, match=r"^f\.yaml: deploy_root: variable \{MISSING\} is not set"
    ):
        expand("{MISSING}/x", {}, where="f.yaml: deploy_root")


def test_host_vars_take_part_in_deploy_root(project: Project) -> None:
    project.write_recipe(deploy_root="/srv/{role}/{app}-{env}")
    assert roots(project, "--env", "dev") == {
        str(project.fleet / h / "srv/web/hello-dev") for h in ("web01", "web02", "web03")
    }
