"""The shipped runbooks/rolling-deploy.yaml through a real HAProxy (issue 13's proof).

A client sends requests through HAProxy for the whole run (lb.py, traffic.py)
while the runbook drains, deploys, smoke-tests and undrains the five web
hosts, canary first then two at a time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .fleet import WEB, Fleet
from .lb import LoadBalancer, app_reply, bump, free_port, serving_project
from .project import REPO, Project
from .traffic import Traffic, assert_rolled

pytestmark = pytest.mark.integration

BATCHES = [["web01"], ["web02", "web03"], ["web04", "web05"]]  # canary: 1, batch: 2
ROOT = "/srv/apps/hello"


def shipped_runbook(project: Project) -> Path:
    """The repository's runbook, unchanged, in the project's runbooks/."""
    (project.root / "runbooks").mkdir()
    return Path(shutil.copy(REPO / "runbooks" / "rolling-deploy.yaml", project.root / "runbooks"))


def serving_old(
    fleet: Fleet, lb: LoadBalancer, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every web host serves 1.0.0 and is UP in HAProxy; the next build is 1.1.0."""
    bump(project, "1.0.0", monkeypatch)
    assert project.run("deploy", "-H", "web") == 0
    lb.wait_states(dict.fromkeys(WEB, "UP"))
    bump(project, "1.1.0", monkeypatch)


def report(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The JSON document the last CLI call printed."""
    out = capsys.readouterr().out
    doc: dict[str, Any] = json.loads(out[out.index("{") :])
    return doc


def steps(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Host -> [(step, status)] from a run's --json document."""
    return {h["host"]: [(s["name"], s["status"]) for s in h["steps"]] for h in doc["hosts"]}


def ledger(fleet: Fleet, host: str) -> list[dict[str, object]]:
    out = fleet.exec(host, f"cat {ROOT}/.fleetdist/ledger.jsonl").stdout
    return [json.loads(line) for line in out.splitlines()]


def assert_all_new(fleet: Fleet, lb: LoadBalancer) -> None:
    for host in WEB:
        assert "version: 1.1.0" in app_reply(fleet, host).splitlines(), host
        target = fleet.exec(host, ["readlink", f"{ROOT}/current"]).stdout
        assert target.startswith("releases/1.1.0-"), (host, target)
    assert lb.states() == dict.fromkeys(WEB, "UP")


def test_rolling_deploy_runbook_drops_no_request(
    fleet: Fleet,
    lb: LoadBalancer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = serving_project(fleet, lb, tmp_path, WEB)
    runbook = shipped_runbook(project)
    serving_old(fleet, lb, project, monkeypatch)
    with Traffic(lb.url) as client:
        client.wait_for(lambda c: c.seen(WEB, "1.0.0"))
        capsys.readouterr()
        assert project.run("run", str(runbook), "--json") == 0
        client.wait_for(lambda c: c.seen(WEB, "1.1.0"))
    done = ["drain", "deploy", "smoke", "undrain"]
    assert steps(report(capsys)) == {h: [(s, "ok") for s in done] for h in WEB}
    assert_rolled(client, BATCHES, "1.0.0", "1.1.0")
    assert_all_new(fleet, lb)
    print(f"{client.sent} requests through HAProxy, none failed: {client.versions()}")


def test_failed_smoke_test_is_undone_and_resume_finishes_the_rest(
    fleet: Fleet,
    lb: LoadBalancer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """web02's app_port var is wrong: its smoke test fails after its deploy.

    It is rolled back (its hook restarts 1.0.0) and undrained; web03, in the
    same batch, finishes; the budget (no failure absorbed) keeps web04 and
    web05 from starting.  With the var fixed, --resume does only web02,
    web04 and web05, and the client never saw a failed request.
    """
    project = serving_project(fleet, lb, tmp_path, WEB)
    good = project.inventory.read_text()
    lb.inventory(
        fleet, tmp_path, WEB, extra={"hosts": {"web02": {"vars": {"app_port": free_port()}}}}
    )
    runbook = shipped_runbook(project)
    serving_old(fleet, lb, project, monkeypatch)
    with Traffic(lb.url) as client:
        client.wait_for(lambda c: c.seen(WEB, "1.0.0"))
        capsys.readouterr()
        assert project.run("run", str(runbook), "--json") == 3  # the budget stopped it
        first = report(capsys)
        assert "budget" in first["aborted"]
        assert steps(first) == {
            "web01": [("drain", "ok"), ("deploy", "ok"), ("smoke", "ok"), ("undrain", "ok")],
            "web02": [("drain", "undone"), ("deploy", "undone"), ("smoke", "failed")],
            "web03": [("drain", "ok"), ("deploy", "ok"), ("smoke", "ok"), ("undrain", "ok")],
            "web04": [],
            "web05": [],
        }
        old_release = ledger(fleet, "web04")[-1]["to"]
        assert [e["to"] for e in ledger(fleet, "web02")][-1] == old_release  # rolled back
        assert "version: 1.0.0" in app_reply(fleet, "web02").splitlines()
        assert lb.states() == dict.fromkeys(WEB, "UP")  # undrained, as the runbook says
        for host in ("web01", "web03"):
            assert "version: 1.1.0" in app_reply(fleet, host).splitlines()
        for host in ("web04", "web05"):
            assert len(ledger(fleet, host)) == 1, f"{host} started despite the spent budget"
        before = {h: len(ledger(fleet, h)) for h in WEB}
        project.inventory.write_text(good)
        assert project.run("run", str(runbook), "--resume", "last", "--json") == 0
        client.wait_for(lambda c: c.seen(WEB, "1.1.0"))
    resumed = report(capsys)
    assert resumed["resumed"] is True, resumed
    done = ["drain", "deploy", "smoke", "undrain"]
    assert steps(resumed) == {
        h: [(s, "done" if h in ("web01", "web03") else "ok") for s in done] for h in WEB
    }
    after = {h: len(ledger(fleet, h)) for h in WEB}
    assert after == {h: before[h] + (h in ("web02", "web04", "web05")) for h in WEB}
    # web01 (canary) and web03 in the first run, the others only when resumed.
    assert_rolled(client, [["web01"], ["web03"], ["web02", "web04", "web05"]], "1.0.0", "1.1.0")
    assert_all_new(fleet, lb)
    print(f"{client.sent} requests through HAProxy, none failed: {client.versions()}")


def test_a_backend_haproxy_does_not_know_fails_the_drain(
    fleet: Fleet, lb: LoadBalancer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """socat exits 0 whatever HAProxy answers: the step fails on any answer."""
    project = serving_project(fleet, lb, tmp_path, WEB)
    runbook = shipped_runbook(project)
    capsys.readouterr()
    assert project.run("run", str(runbook), "--param", "backend=nope", "--json") == 3
    doc = report(capsys)
    assert steps(doc)["web01"] == [("drain", "failed")]
    assert "haproxy: No such backend." in doc["hosts"][0]["error"], doc["hosts"][0]
    assert all(not s for h, s in steps(doc).items() if h != "web01")
    assert fleet.exec("web01", f"test -e {ROOT}/current").returncode != 0, "nothing deployed"
