"""The verbs around a deploy: env-bound inventories, `confirm: true`, `--version`,
`releases`, `runs` and `--run last`, on the local fleet."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fleetdist import cli

from .conftest import HOSTS, Project


def env_inventory(project: Project, env: str, hosts: str, *, confirm: bool = False) -> Path:
    """inventories/<env>.yaml: the local fleet's hosts `hosts` (a pattern), maybe confirm: true."""
    path = project.root / "inventories" / f"{env}.yaml"
    path.write_text(
        ("confirm: true\n" if confirm else "")
        + "defaults: {transport: local, local_root: '{FLEET_ROOT}/{host}'}\n"
        + f"groups:\n  web:\n    hosts: ['{hosts}']\n"
    )
    return path


def test_env_picks_its_own_inventory(project: Project) -> None:
    """`--env dev` used to reach the hosts of inventories/local.yaml, like prod."""
    env_inventory(project, "dev", "web03")
    assert project.run("hosts", "--env", "dev").out.split() == ["web03"]
    assert project.run("hosts").out.split() == list(HOSTS), "prod has no inventory: local"
    project.deploy("--env", "dev")
    assert (project.fleet / "web03" / "srv" / "apps-dev" / "hello" / "current").is_symlink()
    assert sorted(p.name for p in project.fleet.iterdir()) == ["web03"]
    explicit = project.run("hosts", "--env", "dev", "-i", "local")
    assert explicit.out.split() == list(HOSTS), "-i wins over the env's inventory"


def test_confirm_true_refuses_without_yes_and_touches_nothing(project: Project) -> None:
    env_inventory(project, "prod", "web0[1-2]", confirm=True)
    for verb in ("deploy", "rollback"):
        result = project.run(verb, "--json", *(["--step-back"] if verb == "rollback" else []))
        assert result.code == 2
        message = result.json()["error"]["message"]
        assert message.endswith("prod.yaml: confirm: true: pass --yes to " + (
            "deploy its hosts" if verb == "deploy" else "roll back its hosts"
        ))  # fmt: skip
        assert result.err.count("\n") == 1
    assert not project.fleet.exists() and not (project.root / ".fleetdist" / "runs").exists()
    assert not (project.root / "dist").exists(), "refused before building"
    release = project.deploy("--yes")
    assert project.current("web01") == project.current("web02") == release
    assert project.run("status").code == 0, "looking needs no confirmation"
    assert project.run("deploy", "--dry-run").code == 0, "nor does a dry run"


def test_rollback_and_resume_of_a_confirm_inventory_need_yes_too(project: Project) -> None:
    env_inventory(project, "prod", "web01", confirm=True)
    project.deploy("--yes")
    project.bump("two")
    project.deploy("--yes")
    assert project.run("rollback").code == 2
    assert project.run("rollback", "--yes").code == 0
    assert project.run("deploy", "--resume", "last").code == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("typed", "code"), [("prod\n", 0), ("yes\n", 2)])
def test_a_person_at_a_terminal_may_type_the_inventory_name(
    project: Project, monkeypatch: pytest.MonkeyPatch, typed: str, code: int
) -> None:
    env_inventory(project, "prod", "web01", confirm=True)
    monkeypatch.setattr("sys.stdin", _Terminal(typed))
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert cli.main(["deploy", "--project", str(project.root)]) == code
    assert (project.current("web01") is not None) == (code == 0)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fleetdist ") and out.strip() != "fleetdist"


def test_releases_lists_what_each_host_keeps(project: Project) -> None:
    first = project.deploy()
    project.bump("two")
    second = project.deploy("-H", "web01")
    result = project.run("releases", "--json", "-H", "web0[1-2]")
    assert result.code == 0, result.err
    hosts = {h["host"]: h for h in result.json()["hosts"]}
    marks = {
        host: [(r["id"], r["current"], r["previous"], r["tested"]) for r in h["releases"]]
        for host, h in hosts.items()
    }
    assert marks == {
        "web01": [(second, True, False, True), (first, False, True, True)],
        "web02": [(first, True, False, True)],
    }
    table = project.run("releases", "-H", "web01").out
    assert "current,tested" in table and "previous,tested" in table


def test_releases_of_an_unreachable_host_exits_5(project: Project) -> None:
    project.fleet.mkdir(parents=True)
    (project.fleet / "web03").write_text("not a directory")
    result = project.run("releases", "--json")
    assert result.code == 5
    assert [h["reachable"] for h in result.json()["hosts"]] == [True, True, False]


def test_runs_lists_recent_runs_newest_first(project: Project) -> None:
    project.deploy()
    project.bump("two")
    project.deploy()
    deploy_run = project.run("runs", "--json").json()["runs"][0]["run_id"]
    assert project.run("rollback").code == 0
    result = project.run("runs", "--json")
    runs = result.json()["runs"]
    assert [(r["action"], r["state"], r["exit_code"], r["hosts"]) for r in runs] == [
        ("rollback", "finished", 0, 3),
        ("deploy", "finished", 0, 3),
        ("deploy", "finished", 0, 3),
    ]
    assert runs[1]["run_id"] == deploy_run and runs[1]["app"] == "hello"
    assert project.run("runs", "-n", "1", "--json").json()["runs"] == runs[:1]


def test_a_killed_run_shows_as_unfinished(project: Project) -> None:
    runs = project.root / ".fleetdist" / "runs"
    runs.mkdir(parents=True)
    run_id = "20260101T000000.000Z-abcdef"
    (runs / f"{run_id}.jsonl").write_text(
        f'{{"kind": "run", "run_id": "{run_id}", "action": "deploy", "hosts": ["web01"]}}\n'
    )
    (runs / "junk.jsonl").write_text("not json\n")
    states = {r["run_id"]: r["state"] for r in project.run("runs", "--json").json()["runs"]}
    assert states == {run_id: "unfinished", "junk": "unreadable"}


def test_run_last_names_the_newest_rollout(project: Project) -> None:
    first = project.deploy()
    project.bump("two")
    second = project.deploy()
    assert project.run("rollback", "--run", "last").code == 0
    assert all(project.current(h) == first for h in HOSTS)
    assert project.run("rollback", "--run", "last").code == 0, "last is now that rollback"
    assert all(project.current(h) == second for h in HOSTS)
    result = project.run("deploy", "--resume", "last", "--json")
    assert result.code == 0, result.err
    assert {h["status"] for h in result.json()["hosts"]} == {"unchanged"}


def test_run_last_with_no_run_recorded_is_a_usage_error(project: Project) -> None:
    result = project.run("deploy", "--resume", "last")
    assert result.code == 2
    assert "--resume: no deploy of hello (prod) is recorded" in result.err


def test_runs_count_must_be_positive(project: Project) -> None:
    result = project.run("runs", "-n", "0")
    assert (result.code, result.err) == (
        2,
        "fleetdist: error: -n/--count: must be at least 1, got 0\n",
    )


@pytest.mark.parametrize("value", ['"true"', "1", "[true]"])
def test_confirm_must_be_a_boolean(project: Project, value: str) -> None:
    path = env_inventory(project, "prod", "web01")
    path.write_text(f"confirm: {value}\n" + path.read_text())
    result = project.run("hosts")
    assert result.code == 2
    assert result.err.startswith(f"fleetdist: error: {path}: confirm: expected true or false, got ")
