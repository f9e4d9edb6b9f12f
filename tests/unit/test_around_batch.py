"""A recipe's `around_batch`: steps per host of each deploy batch, `before` just before the
batch's cut-over and `after` once its healthcheck passed; failures undo and fail the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Project

# `local` steps append to one file on the controller, so the order across hosts shows.
AROUND: dict[str, Any] = {
    "before": [
        {
            "name": "drain",
            "local": {"shell": "echo drain ${host.name} >> around.log"},
            "undo": {"local": {"shell": "echo undrain-undo ${host.name} >> around.log"}},
        },
        {"name": "gate", "exec": {"shell": "test ! -e fail-before"}},
    ],
    "after": [
        {"name": "seen", "exec": {"shell": "readlink srv/apps/hello/current > seen-after"}},
        {"name": "undrain", "local": {"shell": "echo undrain ${host.name} >> around.log"}},
        {"name": "gate", "exec": {"shell": "test ! -e fail-after"}},
    ],
}


def log(project: Project) -> list[str]:
    path = project.root / "around.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def around(project: Project) -> Project:
    project.write_recipe(around_batch=AROUND)
    return project


def test_before_runs_before_each_batch_cut_over_and_after_after_its_healthcheck(
    around: Project,
) -> None:
    release = around.deploy("--batch", "1")
    assert log(around) == [
        "drain web01", "undrain web01", "drain web02", "undrain web02", "drain web03",
        "undrain web03",
    ]  # fmt: skip
    for host in ("web01", "web02", "web03"):
        seen = (around.fleet / host / "seen-after").read_text().strip()
        assert seen == f"releases/{release}", "after ran once the new release was live"


def test_a_failing_before_step_undoes_and_keeps_the_host_from_cutting_over(
    around: Project,
) -> None:
    (around.fleet / "web02").mkdir(parents=True)
    (around.fleet / "web02" / "fail-before").touch()
    result = around.run("deploy", "--json", "--batch", "1")
    assert result.code == 1, result.err
    hosts = {h["host"]: h for h in result.json()["hosts"]}
    assert (hosts["web02"]["status"], hosts["web02"]["failed_step"]) == (
        "failed",
        "around_batch.before",
    )
    assert "before.gate" in hosts["web02"]["error"]
    assert around.current("web02") is None, "never cut over"
    assert [hosts[h]["status"] for h in ("web01", "web03")] == ["ok", "ok"]
    assert "undrain-undo web02" in log(around) and "undrain web02" not in log(around)


def test_a_canary_whose_before_step_fails_stops_the_rollout(around: Project) -> None:
    """The canary never got to cut over, yet it failed: the rest must not go ahead."""
    (around.fleet / "web01").mkdir(parents=True)
    (around.fleet / "web01" / "fail-before").touch()
    result = around.run("deploy", "--json", "--canary", "1")
    assert result.code == 3, result.err
    doc = result.json()
    assert doc["aborted"] == "canary failed"
    assert [around.current(h) for h in ("web01", "web02", "web03")] == [None, None, None]


def test_a_failed_flip_undoes_the_before_steps(around: Project) -> None:
    around.write_recipe(healthcheck='test ! -e "$FLEETDIST_ROOT/fail-health"')
    around.host_root("web01").mkdir(parents=True)
    (around.host_root("web01") / "fail-health").touch()
    result = around.run("deploy", "--json", "-H", "web01")
    assert result.code == 1
    assert result.json()["hosts"][0]["status"] == "reverted"
    assert log(around) == ["drain web01", "undrain-undo web01"]


def test_a_failing_after_step_fails_the_host_but_the_release_stays_live(
    around: Project,
) -> None:
    (around.fleet / "web01").mkdir(parents=True)
    (around.fleet / "web01" / "fail-after").touch()
    result = around.run("deploy", "--json", "-H", "web01")
    assert result.code == 1
    host = result.json()["hosts"][0]
    assert (host["status"], host["failed_step"]) == ("failed", "around_batch.after")
    assert around.current("web01") == result.json()["release_id"]


def test_the_dry_run_shows_them_around_the_flip(around: Project) -> None:
    result = around.run("deploy", "--dry-run", "--json", "-H", "web01")
    assert result.code == 0, result.err
    steps = result.json()["hosts"][0]["steps"]
    assert [s["name"] for s in steps] == [
        "prepare",
        "around_batch.before.drain",
        "around_batch.before.gate",
        "activate",
        "around_batch.after.seen",
        "around_batch.after.undrain",
        "around_batch.after.gate",
    ]
    assert steps[1]["script"] == (
        "# on the controller:\nsh -c 'echo drain web01 >> around.log'\n"
        "# undo:\n# on the controller:\nsh -c 'echo undrain-undo web01 >> around.log'"
    )
    assert steps[2]["script"] == "# on web01:\nsh -c 'test ! -e fail-before'"
    assert not around.fleet.exists()


@pytest.mark.parametrize(
    ("around_batch", "message"),
    [
        ({"before": [{"name": "x", "deploy": {}}]}, "around_batch.before[0].deploy: around_batch"),
        ({"during": []}, "around_batch.during: unknown key"),
        ({"after": [{"name": "x", "exec": ["echo", "${port}"]}]}, "unknown reference ${port}"),
        ("drain", "around_batch: expected a mapping"),
    ],
)
def test_around_batch_is_validated_like_a_runbook(
    project: Project, around_batch: object, message: str
) -> None:
    project.write_recipe(around_batch=around_batch)
    result = project.run("deploy")
    assert result.code == 2 and message in result.err, result.err
    assert not project.fleet.exists()


def test_a_missing_host_var_stops_the_deploy_before_anything(project: Project) -> None:
    project.write_recipe(
        around_batch={"before": [{"name": "x", "exec": ["echo", "${host.vars.lb}"]}]}
    )
    result = project.run("deploy")
    assert result.code == 2
    assert "around_batch.before[0].exec[1]: host web01 has no var 'lb'" in result.err
    assert not project.fleet.exists() and not Path(project.root / "dist").exists()
