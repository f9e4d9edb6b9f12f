"""Deploy, rollback and friends end to end on the local transport, checked on the hosts."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fleetdist.release import steps
from fleetdist.transport.local import LocalTransport

from .conftest import HOSTS, Project

LEDGER_KEYS = {"time", "operator", "action", "app", "env", "run", "from", "to", "result"}


def test_deploy_to_three_local_hosts(real_recipe: Project) -> None:
    """The example recipe as shipped: its unittest suite and python healthcheck run in place."""
    project = real_recipe
    result = project.run("deploy", "--json")
    assert result.code == 0, result.err
    report = result.json()
    rid = report["release_id"]
    assert report["exit_code"] == 0 and report["aborted"] is None
    assert {h["host"]: h["status"] for h in report["hosts"]} == dict.fromkeys(HOSTS, "ok")
    for host in HOSTS:
        root = project.host_root(host)
        assert os.readlink(root / "current") == f"releases/{rid}"
        assert (root / "current" / "hello" / "__init__.py").is_file()
        assert (root / "releases" / rid / ".fleetdist-release").read_text().split()[0] == rid
        assert project.releases(host) == {rid}
        assert project.previous(host) is None
        assert not (root / ".fleetdist" / "lock").exists(), "the lease is given back"
        assert list((root / ".fleetdist" / "incoming").iterdir()) == []
        [line] = project.ledger(host)
        assert set(line) >= LEDGER_KEYS
        assert (line["action"], line["from"], line["to"], line["result"]) == (
            "deploy",
            None,
            rid,
            "ok",
        )
        assert (line["app"], line["env"], line["run"]) == ("hello", "prod", report["run_id"])
        assert line["operator"]
        datetime.fromisoformat(line["time"].replace("Z", "+00:00"))


def test_deploy_selected_hosts_only(project: Project) -> None:
    rid = project.deploy("-H", "web0[1-2]", "-x", "web02")
    assert project.current("web01") == rid
    assert not project.host_root("web02").exists()
    assert not project.host_root("web03").exists()


def test_operator_comes_from_the_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETDIST_OPERATOR", "alice@runbook")
    project.deploy("-H", "web01")
    assert project.ledger("web01")[-1]["operator"] == "alice@runbook"


def test_redeploying_the_current_release_changes_nothing(project: Project) -> None:
    rid = project.deploy()
    again = project.run("deploy", "--json")
    assert again.code == 0
    assert {h["status"] for h in again.json()["hosts"]} == {"unchanged"}
    for host in HOSTS:
        assert project.current(host) == rid
        assert project.previous(host) is None


def test_second_deploy_moves_current_and_records_previous(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    assert v1 != v2
    for host in HOSTS:
        assert project.current(host) == v2
        assert project.previous(host) == v1
        assert project.releases(host) == {v1, v2}
        last = project.ledger(host)[-1]
        assert (last["action"], last["from"], last["to"], last["result"]) == (
            "deploy",
            v1,
            v2,
            "ok",
        )


def test_failing_in_place_test_leaves_current_untouched(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    project.write_recipe(test=["true", "exit 1"])
    result = project.run("deploy", "--json")
    assert result.code == 1, result.err
    report = result.json()
    v2 = report["release_id"]
    assert v2 != v1
    for outcome in report["hosts"]:
        assert (outcome["status"], outcome["failed_step"]) == ("failed", "test")
        assert "in-place test failed: exit 1" in outcome["error"]
    for host in HOSTS:
        assert project.current(host) == v1
        assert project.previous(host) is None
        # Staged and tested in place, but never activated.
        assert v2 in project.releases(host)
        last = project.ledger(host)[-1]
        assert (last["action"], last["from"], last["to"], last["result"], last["step"]) == (
            "deploy",
            v1,
            v2,
            "failed",
            "test",
        )
        assert not (project.host_root(host) / ".fleetdist" / "lock").exists()


def test_failing_test_on_first_deploy_creates_no_current(project: Project) -> None:
    project.write_recipe(test=["false"])
    result = project.run("deploy")
    assert result.code == 1
    for host in HOSTS:
        assert project.current(host) is None
        assert "failed" in result.out  # the recap table


def test_failing_before_activate_hook_does_not_flip(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    project.write_recipe(hooks={"before_activate": ["false"], "after_activate": []})
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 1
    assert project.current("web01") == v1
    assert project.previous("web01") is None


def test_failing_healthcheck_reverts_to_the_replaced_release(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    project.bump("v3")
    project.write_recipe(healthcheck="test ! -f BUILD_TAG || ! grep -q v3 BUILD_TAG")
    result = project.run("deploy", "--json")
    assert result.code == 1, result.err
    report = result.json()
    v3 = report["release_id"]
    for outcome in report["hosts"]:
        assert (outcome["status"], outcome["failed_step"]) == ("reverted", "healthcheck")
        assert "healthcheck failed; reverted to" in outcome["error"]
    for host in HOSTS:
        assert project.current(host) == v2
        assert project.previous(host) == v1, "previous is restored too"
        assert v3 in project.releases(host)
        last = project.ledger(host)[-1]
        assert (last["action"], last["from"], last["to"], last["result"]) == (
            "deploy",
            v2,
            v3,
            "reverted",
        )
        assert sum(1 for e in project.ledger(host) if e["to"] == v3) == 1


def test_failing_healthcheck_on_first_deploy_removes_current(project: Project) -> None:
    project.write_recipe(healthcheck="false")
    result = project.run("deploy", "-H", "web01")
    assert result.code == 1
    assert project.current("web01") is None
    assert not (project.host_root("web01") / "current").exists()
    assert project.ledger("web01")[-1]["result"] == "reverted"


def test_failing_after_activate_hook_reverts(project: Project) -> None:
    v1 = project.deploy("-H", "web01")
    project.bump("v2")
    project.write_recipe(hooks={"before_activate": [], "after_activate": ["exit 3"]})
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 1
    assert project.current("web01") == v1
    assert result.json()["hosts"][0]["status"] == "reverted"


def test_rollback_twice_returns_to_the_start(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    first = project.run("rollback", "--json")
    assert first.code == 0, first.err
    for host in HOSTS:
        assert (project.current(host), project.previous(host)) == (v1, v2)
        last = project.ledger(host)[-1]
        assert (last["action"], last["from"], last["to"], last["result"]) == (
            "rollback",
            v2,
            v1,
            "ok",
        )
    second = project.run("rollback", "--json")
    assert second.code == 0, second.err
    for host in HOSTS:
        assert (project.current(host), project.previous(host)) == (v2, v1)
        assert project.releases(host) == {v1, v2}
        assert [e["action"] for e in project.ledger(host)] == [
            "deploy",
            "deploy",
            "rollback",
            "rollback",
        ]


def test_rollback_to_a_named_release(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    project.bump("v3")
    v3 = project.deploy()
    result = project.run("rollback", "--to", v1, "--json")
    assert result.code == 0, result.err
    for host in HOSTS:
        assert (project.current(host), project.previous(host)) == (v1, v3)
    # To the release that is already current: nothing changes.
    again = project.run("rollback", "--to", v1, "--json")
    assert again.code == 0
    assert {h["status"] for h in again.json()["hosts"]} == {"unchanged"}
    assert v2 in project.releases("web01")


def test_rollback_to_an_unknown_release_fails_and_changes_nothing(project: Project) -> None:
    v1 = project.deploy()
    result = project.run("rollback", "--to", "9.9.9-nothere", "--json")
    assert result.code == 1
    for outcome in result.json()["hosts"]:
        assert "release '9.9.9-nothere' is not on this host" in outcome["error"]
    assert all(project.current(h) == v1 for h in HOSTS)


def test_rollback_with_nothing_to_go_back_to(project: Project) -> None:
    v1 = project.deploy("-H", "web01")
    result = project.run("rollback", "-H", "web01", "--json")
    assert result.code == 1
    assert "no previous release" in result.json()["hosts"][0]["error"]
    assert project.current("web01") == v1


def test_rollback_without_hosts_uses_the_last_deploy(project: Project) -> None:
    project.deploy("-H", "web01")
    project.bump("v2")
    project.deploy("-H", "web01")
    result = project.run("rollback", "--json")
    assert result.code == 0, result.err
    assert [h["host"] for h in result.json()["hosts"]] == ["web01"]
    assert not project.host_root("web02").exists()


def test_already_staged_release_is_not_uploaded_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.deploy()
    project.bump("v2")
    v2 = project.deploy()
    assert project.run("rollback").code == 0
    uploads: list[Path] = []
    real_run = LocalTransport.run

    def run(self: LocalTransport, script: str, **kw: Any) -> Any:
        result = real_run(self, script, **kw)
        if steps.SEND in result.stdout.splitlines():  # the host asked for the artifact
            assert kw["stdin"].after == steps.SEND
            uploads.append(kw["stdin"].file)
        return result

    monkeypatch.setattr(LocalTransport, "run", run)
    result = project.run("deploy", "--json")
    assert result.code == 0, result.err + result.out
    assert result.json()["release_id"] == v2
    assert uploads == []
    stages = [
        (e["host"], e["stage"]) for e in project.journal(result.json()["run_id"]) if e.get("stage")
    ]
    assert not [s for s in stages if s[1] == "uploaded"]
    for host in HOSTS:
        assert (host, "staged") in stages and (host, "activated") in stages
        assert project.current(host) == v2
    # ...whereas a fresh release is uploaded, and the journal says so.
    project.bump("v3")
    fresh = project.run("deploy", "--json")
    assert len(uploads) == 3
    payloads = project.root / ".fleetdist" / "payloads"  # the canonical tar, never the artifact
    assert all(u.name.endswith(".tar.gz") and u.parent == payloads for u in uploads)
    assert ("web01", "uploaded") in [
        (e["host"], e["stage"]) for e in project.journal(fresh.json()["run_id"]) if e.get("stage")
    ]
    for host in HOSTS:  # the uploaded archive does not linger
        assert list((project.host_root(host) / ".fleetdist" / "incoming").iterdir()) == []


def test_dry_run_prints_scripts_and_touches_nothing(project: Project) -> None:
    result = project.run("deploy", "--dry-run")
    assert result.code == 0, result.err
    for host in HOSTS:
        for step in ("prepare", "activate"):
            assert f"# {host}: {step}\n" in result.out
    assert "set -eu" in result.out
    assert "test -f hello/__init__.py" in result.out
    assert not project.fleet.exists()
    assert not (project.root / ".fleetdist" / "runs").exists()


def test_dry_run_after_a_deploy_leaves_hosts_as_they_were(project: Project) -> None:
    project.deploy()
    before = {
        p.relative_to(project.fleet): (p.is_symlink() and os.readlink(p))
        for p in project.fleet.rglob("*")
    }
    ledger = project.ledger("web01")
    project.bump("v2")
    assert project.run("deploy", "--dry-run").code == 0
    assert project.run("plan").code == 0
    after = {
        p.relative_to(project.fleet): (p.is_symlink() and os.readlink(p))
        for p in project.fleet.rglob("*")
    }
    assert after == before
    assert project.ledger("web01") == ledger


def test_plan_json_is_valid(project: Project) -> None:
    result = project.run("plan", "--json")
    assert result.code == 0, result.err
    planned = json.loads(result.out)["hosts"]
    assert [p["host"] for p in planned] == list(HOSTS)
    for host in planned:
        assert host["root"] == str(project.host_root(host["host"]))
        assert [s["name"] for s in host["steps"]] == ["prepare", "activate"]
        assert all(isinstance(s["script"], str) for s in host["steps"])
    assert not project.fleet.exists()


def test_status_json(project: Project) -> None:
    v1 = project.deploy()
    project.bump("v2")
    v2 = project.deploy("-H", "web0[1-2]")
    result = project.run("status", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert (doc["version"], doc["exit_code"]) == (1, 0)
    rows = doc["hosts"]
    by_host = {r["host"]: r for r in rows}
    assert list(by_host) == list(HOSTS)
    for host in ("web01", "web02"):
        row = by_host[host]
        assert (row["app"], row["current"], row["previous"]) == ("hello", v2, v1)
        assert sorted(row["releases"]) == sorted([v1, v2])
    assert (by_host["web03"]["current"], by_host["web03"]["previous"]) == (v1, None)
    assert all(r["drift"] for r in rows), "web03 differs from its group"
    assert all(r["reachable"] and r["lock"] is None for r in rows)


def test_status_before_any_deploy(project: Project) -> None:
    result = project.run("status", "--json")
    assert result.code == 0
    assert [(r["current"], r["previous"]) for r in result.json()["hosts"]] == [(None, None)] * 3


def test_status_table(project: Project) -> None:
    rid = project.deploy("-H", "web01")
    result = project.run("status", "-H", "web01")
    assert result.code == 0
    assert "web01" in result.out and rid in result.out


def test_deploy_json_is_exactly_one_document(project: Project) -> None:
    result = project.run("deploy", "--json")
    assert result.code == 0
    decoder = json.JSONDecoder()
    document, end = decoder.raw_decode(result.out)
    assert result.out[end:].strip() == ""
    assert isinstance(document, dict)
    assert set(document) >= {"run_id", "action", "app", "env", "release_id", "hosts", "exit_code"}
    assert document["action"] == "deploy"


def test_rollback_and_history_json_are_single_documents(project: Project) -> None:
    project.deploy()
    project.bump("v2")
    project.deploy()
    rollback = project.run("rollback", "--json")
    assert json.loads(rollback.out)["action"] == "rollback"
    history = project.run("history", "--json")
    assert history.code == 0
    entries = json.loads(history.out)["entries"]
    assert len(entries) == 9
    assert {e["host"] for e in entries} == set(HOSTS)
    assert [e["action"] for e in entries if e["host"] == "web01"] == [
        "deploy",
        "deploy",
        "rollback",
    ]


def test_canary_batches_cut_over_everything(project: Project) -> None:
    result = project.run("deploy", "--json", "--canary", "1", "--batch", "1")
    assert result.code == 0, result.err
    batches = [
        e["data"]
        for e in project.journal(result.json()["run_id"])
        if e.get("kind") == "stage" and e.get("stage") == "activated"
    ]
    assert len(batches) == 3
    assert all(project.current(h) for h in HOSTS)


def test_interrupted_transfer_and_unpack_never_count_as_staged(project: Project) -> None:
    """What a dropped connection leaves (half an upload, half a staging dir) is redone."""
    project.bump("v1")
    plan = project.run("plan", "--json", "-H", "web01").json()
    rid = plan["hosts"][0]["release_id"]
    state = project.host_root("web01") / ".fleetdist"
    (state / "incoming").mkdir(parents=True)
    (state / "incoming" / f"{rid}.tar.gz").write_bytes(b"\x1f\x8b truncated")
    half = state / "staging" / rid
    half.mkdir(parents=True)
    (half / "half-written.py").write_text("x =")
    assert project.run("status", "--json", "-H", "web01").json()["hosts"][0]["releases"] == []
    assert project.deploy("-H", "web01") == rid
    release = project.host_root("web01") / "releases" / rid
    assert not (release / "half-written.py").exists()
    assert (release / "hello" / "__init__.py").is_file()
    assert not half.exists() and not (state / "incoming" / f"{rid}.tar.gz").exists()
