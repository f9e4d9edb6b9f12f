"""A runbook over real SSH: `exec` (argv and shell, on the host and `on:` another host),
`deploy` with its `rollback` undo, `http` from the host, the budget, and `--resume`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from .fleet import Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"
RUNBOOK = """\
params:
  lb: {default: web04}
  port: {type: int, default: 8765}
hosts: web0[1-3]
strategy: {batch: 1, max_failures: 0}
steps:
  - name: drain
    on: ${lb}
    exec: {shell: "echo drained ${host.name} >> /srv/lb.log"}
    undo: {on: "${lb}", exec: {shell: "echo undrained ${host.name} >> /srv/lb.log"}}
  - name: deploy
    deploy: {}
    undo: {rollback: {}}
  - name: serve      # a small web server in the new release, for 20 seconds
    exec:
      - sh
      - -c
      - 'cd "$1" && (timeout 20 python3 -m http.server "$2" -b 127.0.0.1 >/dev/null 2>&1 &)'
      - sh
      - /srv/apps/hello/current
      - "${port}"
  - name: smoke
    http: {url: "http://127.0.0.1:${port}/", body: hello, retries: 20, delay: 0.25s, from: host}
  - name: gate
    exec: {shell: "test ! -e /srv/fail-here"}
  - name: undrain
    on: ${lb}
    exec: {shell: "echo undrained ${host.name} >> /srv/lb.log"}
"""


def current(fleet: Fleet, host: str) -> str:
    return fleet.exec(host, ["readlink", f"{ROOT}/current"]).stdout.strip().split("/")[-1]


def test_a_runbook_over_ssh_undoes_a_failed_host_and_resumes(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = Project(
        tmp_path / "project",
        fleet.inventory(tmp_path, services=("web01", "web02", "web03", "web04")),
    )
    project.recipe(test=[], healthcheck="test -f hello/__init__.py")
    (project.root / "runbooks").mkdir()
    (project.root / "runbooks" / "roll.yaml").write_text(textwrap.dedent(RUNBOOK))
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    assert project.run("deploy", "-H", "web0[1-3]") == 0
    old = current(fleet, "web02")
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    fleet.exec("web02", "touch /srv/fail-here")
    capsys.readouterr()

    assert project.run("run", "roll", "--json") == 3
    doc = json.loads(capsys.readouterr().out)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["web01"]["status"] == "ok"
    assert [s["status"] for s in hosts["web01"]["steps"]] == ["ok"] * 6
    assert (hosts["web02"]["status"], hosts["web02"]["failed_step"]) == ("failed", "gate")
    assert [(s["name"], s["status"]) for s in hosts["web02"]["steps"]] == [
        ("drain", "undone"),
        ("deploy", "undone"),
        ("serve", "ok"),
        ("smoke", "ok"),
        ("gate", "failed"),
    ]
    assert hosts["web03"]["status"] == "skipped"
    new = hosts["web01"]["steps"][1]["data"]["to"]
    assert new.startswith("2.0.0-") and current(fleet, "web01") == new
    assert current(fleet, "web02") == old, "its deploy was undone: rolled back"
    assert current(fleet, "web03") == old
    assert fleet.exec("web04", ["cat", "/srv/lb.log"]).stdout.split("\n")[:4] == [
        "drained web01",
        "undrained web01",
        "drained web02",
        "undrained web02",
    ]
    ledger = fleet.exec("web02", ["cat", f"{ROOT}/.fleetdist/ledger.jsonl"]).stdout
    assert [json.loads(line)["action"] for line in ledger.splitlines()] == [
        "deploy",
        "deploy",
        "rollback",
    ]

    fleet.exec("web02", "rm /srv/fail-here")
    assert project.run("run", "roll", "--resume", "last", "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["run_id"] == doc["run_id"]
    assert {h: current(fleet, h) for h in ("web01", "web02", "web03")} == dict.fromkeys(
        ("web01", "web02", "web03"), new
    )
    assert [s["status"] for s in again["hosts"][0]["steps"]] == ["done"] * 6
    for host in ("web01", "web02", "web03"):
        lock = fleet.exec(host, ["test", "-e", f"{ROOT}/.fleetdist/lock"])
        assert lock.returncode == 1, "the run's lease was given back"


def test_around_batch_drains_and_undrains_each_batch_over_ssh(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = Project(
        tmp_path / "project",
        fleet.inventory(tmp_path, services=("web01", "web02", "web04"), extra=LB_VARS),
    )
    log = "echo {} ${{host.name}} >> /srv/lb.log"
    project.recipe(
        test=[],
        healthcheck="test -f hello/__init__.py",
        around_batch={
            "before": [
                {
                    "name": "drain",
                    "on": "${host.vars.lb}",
                    "exec": {"shell": log.format("drain")},
                    "undo": {"on": "web04", "exec": {"shell": log.format("undo")}},
                }
            ],
            "after": [{"name": "undrain", "on": "web04", "exec": {"shell": log.format("undrain")}}],
        },
    )
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    assert project.run("deploy", "-H", "web0[1-2]", "--batch", "1") == 0
    lines = fleet.exec("web04", ["cat", "/srv/lb.log"]).stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["drain", "web01"],
        ["undrain", "web01"],
        ["drain", "web02"],
        ["undrain", "web02"],
    ]


LB_VARS = {"hosts": {"web01": {"vars": {"lb": "web04"}}, "web02": {"vars": {"lb": "web04"}}}}


def test_a_runbook_with_become_runs_its_commands_and_lease_as_root(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"defaults": {"user": "deploy", "become": True}}
    project = Project(
        tmp_path / "project", fleet.inventory(tmp_path, services=("web05",), extra=extra)
    )
    project.recipe(test=[], healthcheck="true")
    (project.root / "runbooks").mkdir()
    (project.root / "runbooks" / "who.yaml").write_text(
        "steps:\n"
        "  - {name: who, exec: {shell: 'id -un > /srv/who'}}\n"
        "  - {name: deploy, deploy: {}}\n"
    )
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    assert project.run("run", "who") == 0
    assert fleet.exec("web05", ["cat", "/srv/who"]).stdout == "root\n"
    owner = fleet.exec("web05", ["stat", "-c", "%U", f"{ROOT}/current/"]).stdout.strip()
    assert owner == "root"
