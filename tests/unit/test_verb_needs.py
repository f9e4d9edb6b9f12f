"""Each verb resolves only what it uses (issue 11, items 16 and 17).

Read-only and emergency verbs must work when a build-only variable is unset:
an operator rolling back at 3am has no `GIT_SHA`.  And an artifact that
cannot fit the recipe's hosts is refused when it is loaded, before any host
is touched, not after `apt-get install` succeeded on all of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import HOSTS, Project

VERSION = "1.2.{GIT_SHA}"


@pytest.fixture
def two_releases(project: Project, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Two deploys built with GIT_SHA set; then GIT_SHA is unset, as on an operator's shell."""
    project.write_recipe(version=VERSION)
    monkeypatch.setenv("GIT_SHA", "abc123")
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    monkeypatch.delenv("GIT_SHA")
    return v1, v2


def test_status_needs_no_build_variable(project: Project, two_releases: tuple[str, str]) -> None:
    v1, v2 = two_releases
    result = project.run("status", "--json")
    assert result.code == 0, result.err
    assert {(r["current"], r["previous"]) for r in result.json()["hosts"]} == {(v2, v1)}


def test_history_needs_no_build_variable(project: Project, two_releases: tuple[str, str]) -> None:
    result = project.run("history", "--json")
    assert result.code == 0, result.err
    assert {e["to"] for e in result.json()["entries"]} == set(two_releases)


@pytest.mark.parametrize("how", [[], ["--to", "{v1}"], ["-H", "web01"]])
def test_rollback_needs_no_build_variable(
    project: Project, two_releases: tuple[str, str], how: list[str]
) -> None:
    v1, _ = two_releases
    result = project.run("rollback", *[a.format(v1=v1) for a in how])
    assert result.code == 0, result.err
    hosts = ["web01"] if "-H" in how else HOSTS
    assert {project.current(h) for h in hosts} == {v1}


def test_rollback_run_needs_no_build_variable(
    project: Project, two_releases: tuple[str, str]
) -> None:
    v1, _ = two_releases
    runs = sorted((project.root / ".fleetdist" / "runs").glob("*.jsonl"))
    result = project.run("rollback", "--run", runs[-1].stem)
    assert result.code == 0, result.err
    assert {project.current(h) for h in HOSTS} == {v1}


def test_unlock_needs_no_build_variable(project: Project, two_releases: tuple[str, str]) -> None:
    result = project.run("unlock", "--json")
    assert result.code == 0, result.err
    assert {h["host"]: h["status"] for h in result.json()["hosts"]} == dict.fromkeys(HOSTS, "ok")


def test_deploying_a_built_artifact_needs_no_build_variable(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_recipe(version=VERSION)
    monkeypatch.setenv("GIT_SHA", "abc123")
    built = project.run("build", "--json", "--formats", "tar.gz")
    assert built.code == 0, built.err
    monkeypatch.delenv("GIT_SHA")
    result = project.run("deploy", "--json", "--artifact", built.json()["artifacts"][0]["path"])
    assert result.code == 0, result.err
    assert result.json()["release_id"].startswith("1.2.abc123-")


@pytest.mark.parametrize("verb", ["build", "deploy", "plan"])
def test_verbs_that_build_still_need_it(project: Project, verb: str) -> None:
    project.write_recipe(version=VERSION)
    result = project.run(verb)
    assert result.code == 2
    assert result.err == (
        f"fleetdist: error: {project.recipe_path}: version: variable {{GIT_SHA}} is not set"
        " (env file, inventory vars or environment)\n"
    )
    assert not project.fleet.exists()


# -- an OS package installs where its build put it ---------------------------------


def fake_deb(project: Project) -> Path:
    """A .deb with the metadata `fleetdist build` writes; its content never matters here."""
    deb = project.root / "dist" / "bookworm" / "hello-1.0.0_1.0.0_amd64.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"!<arch>\n")
    meta = {"app": "hello", "version": "1.0.0", "release_id": "1.0.0", "format": "deb"}
    deb.with_name(deb.name + ".meta.json").write_text(json.dumps(meta))
    return deb


@pytest.mark.parametrize("verb", ["deploy", "plan"])
@pytest.mark.parametrize("root", ["/srv/apps/hello", "/opt/hello/app", "/opt/other"])
def test_deb_with_a_deploy_root_elsewhere_is_refused_before_any_host(
    project: Project, verb: str, root: str
) -> None:
    project.write_recipe(deploy_root=root)
    result = project.run(verb, "--artifact", str(fake_deb(project)))
    assert result.code == 2, result.err + result.out
    assert result.err == (
        f"fleetdist: error: {project.recipe_path}: deploy_root (host web01): {root!r}:"
        " a .deb package installs under /opt/hello; set deploy_root: /opt/hello\n"
    )
    assert not project.fleet.exists()


@pytest.mark.parametrize("root", ["/opt/hello", "/opt/hello/", "/opt/{app}"])
def test_deb_with_deploy_root_opt_app_passes_the_check(project: Project, root: str) -> None:
    project.write_recipe(deploy_root=root)
    result = project.run("plan", "--json", "--artifact", str(fake_deb(project)))
    assert result.code == 0, result.err
    assert {h["release_id"] for h in result.json()["hosts"]} == {"1.0.0"}
    assert not project.fleet.exists()


def test_history_with_a_ledger_it_could_not_read_is_an_error_not_a_hole(
    project: Project, two_releases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that answers but whose ledger script fails must not vanish from the history."""
    from fleetdist import status
    from fleetdist.release.command import raw, script
    from fleetdist.release.step import Step

    broken = lambda layout: Step("ledger", script([raw("echo no ledger here >&2; exit 3")]))  # noqa: E731
    monkeypatch.setattr(status.steps, "read_ledger", broken)
    result = project.run("history")
    assert result.code == 1
    assert "reading its ledger: no ledger here" in result.err
