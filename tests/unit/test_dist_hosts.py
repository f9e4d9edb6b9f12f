"""`fleetdist dist --hosts` on the local transport: versions, tests, gating, moves, recovery.

Three local hosts (directories standing in for `/`) take the same dist.json;
`web02`'s inventory vars make its in-place test fail.  Real SSH is covered by
tests/integration/test_dist_ssh.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetdist.cli import main
from fleetdist.errors import ConfigError
from fleetdist.release.distfacts import parse_facts

from .distman_repo import commit, git, isolate, snapshot, write

HOSTS = ("web01", "web02", "web03")
ROOT = "/srv/dist"
DIST: dict[str, Any] = {
    "version": 1,
    "author": "team@example.com",
    "targets": {
        "app": {"source": "app", "destination": "{DEPLOY_ROOT}/lib/app"},
        "tool": {
            "source": "tool.sh",
            "destination": "{DEPLOY_ROOT}/bin/tool",
            "pipeline": {"up": {"script": "tr a-z A-Z < {input} > {output}"}},
        },
    },
    "fleetdist": {"test": ["test -f a.txt || test -x tool.0.*", "test {MUST} = ok"]},
}


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Fleet:
    repo: Path
    project: Path
    hosts: Path
    capsys: pytest.CaptureFixture[str]

    def dist(self, *args: str) -> Done:
        old = Path.cwd()
        os.chdir(self.repo)
        try:
            self.capsys.readouterr()
            code = main(["dist", "--project", str(self.project), *args])
        finally:
            os.chdir(old)
        got = self.capsys.readouterr()
        return Done(code, got.out, got.err)

    def root(self, host: str) -> Path:
        return self.hosts / host / ROOT.lstrip("/")

    def link(self, host: str, rel: str = "lib/app") -> str | None:
        path = self.root(host) / rel
        return os.readlink(path) if path.is_symlink() else None

    def inventory(self, **host_vars: dict[str, str]) -> None:
        hosts = {
            h: {"local_root": str(self.hosts / h), "vars": host_vars.get(h, {})} for h in HOSTS
        }
        doc = {
            "defaults": {"transport": "local", "vars": {"DEPLOY_ROOT": ROOT, "MUST": "ok"}},
            "hosts": hosts,
        }
        inv = self.project / "inventories" / "local.yaml"
        inv.parent.mkdir(parents=True, exist_ok=True)
        inv.write_text(yaml.safe_dump(doc))


@pytest.fixture
def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Fleet:
    isolate(monkeypatch, tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo / "dist.json", json.dumps(DIST))
    write(repo / "app" / "a.txt", "v1\r\n")
    write(repo / "app" / "sub" / "b.txt", "b\n")
    write(repo / "app" / ".hidden", "skipped\n")
    write(repo / "tool.sh", "#!/bin/sh\necho tool\n", 0o755)
    commit(repo, "first")
    f = Fleet(repo, tmp_path / "project", tmp_path / "hosts", capsys)
    f.inventory(web02={"MUST": "broken"})
    return f


def test_a_failing_host_keeps_its_links_while_the_others_flip(fleet: Fleet) -> None:
    done = fleet.dist("--hosts", "web*", "--json")
    assert done.code == 1, done.err
    status = {h["host"]: h["status"] for h in done.json()["hosts"]}
    assert status == {"web01": "ok", "web02": "failed", "web03": "ok"}
    for host in ("web01", "web03"):
        assert fleet.link(host) == "versions/app.0." + git(
            fleet.repo, "rev-parse", "--short=7", "HEAD"
        )
        assert (fleet.root(host) / ".distman" / "epoch").is_file()
    web02 = fleet.root("web02")
    assert sorted(p.name for p in web02.iterdir()) == [".fleetdist"], "nothing but our records"
    assert "in-place test failed" in done.json()["hosts"][1]["error"]


def test_remote_tree_is_the_local_dist_tree(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fleet.dist("--hosts", "web01").code == 0
    local = tmp_path / "local" / ROOT.lstrip("/")
    monkeypatch.setenv("DEPLOY_ROOT", str(local))
    assert fleet.dist("-y").code == 0
    monkeypatch.delenv("DEPLOY_ROOT")
    remote = snapshot(fleet.root("web01"), fleet.repo)
    remote = {k: v for k, v in remote.items() if not k.startswith(".fleetdist")}
    assert remote == snapshot(local, fleet.repo)


def test_a_rerun_changes_nothing_and_a_new_commit_is_the_next_number(fleet: Fleet) -> None:
    assert fleet.dist("--hosts", "web01").code == 0
    epoch = (fleet.root("web01") / ".distman" / "epoch").read_text()
    again = fleet.dist("--hosts", "web01", "--json")
    assert again.code == 0 and again.json()["hosts"][0]["status"] == "unchanged"
    assert (fleet.root("web01") / ".distman" / "epoch").read_text() == epoch
    write(fleet.repo / "app" / "a.txt", "v2\n")
    second = commit(fleet.repo, "second")
    assert fleet.dist("--hosts", "web01").code == 0
    assert fleet.link("web01") == f"versions/app.1.{second}"
    assert f"commit: {second}" in (fleet.root("web01") / "lib" / ".app.dist").read_text()


def test_number_moves_links_back_on_every_host(fleet: Fleet) -> None:
    fleet.inventory()
    first = git(fleet.repo, "rev-parse", "--short=7", "HEAD")
    assert fleet.dist("--hosts", "web*").code == 0
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    assert fleet.dist("--hosts", "web*").code == 0
    done = fleet.dist("-n", "-1", "--hosts", "web*", "--json")
    assert done.code == 0, done.err
    for host in HOSTS:
        assert fleet.link(host) == f"versions/app.0.{first}"
        info = (fleet.root(host) / "lib" / ".app.dist").read_text()
        assert f"commit: {first}\n" in info and "author: team@example.com" in info
    assert fleet.dist("--reset", "--hosts", "web*").code == 0
    assert all(fleet.link(h, "lib/app").startswith("versions/app.1.") for h in HOSTS)  # type: ignore[union-attr]
    missing = fleet.dist("-n", "7", "--hosts", "web01")
    assert missing.code == 1 and "Target version 7 not found" in missing.err


def test_a_spent_failure_budget_moves_no_link(fleet: Fleet) -> None:
    fleet.inventory()
    assert fleet.dist("--hosts", "web*").code == 0
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    fleet.inventory(web01={"MUST": "broken"}, web02={"MUST": "broken"})
    budget = fleet.dist("--hosts", "web*", "--max-fail", "1", "--json")
    assert budget.code == 3 and budget.json()["aborted"]
    assert all(fleet.link(h).startswith("versions/app.0.") for h in HOSTS)  # type: ignore[union-attr]


def test_resume_finishes_the_hosts_a_run_left(fleet: Fleet) -> None:
    first = fleet.dist("--hosts", "web*", "--json")
    assert first.code == 1
    fleet.inventory()
    done = fleet.dist("--resume", "last", "--json")
    assert done.code == 0, done.err
    status = {h["host"]: h["status"] for h in done.json()["hosts"]}
    assert status == {"web01": "unchanged", "web02": "ok", "web03": "unchanged"}
    assert done.json()["run_id"] == first.json()["run_id"]


def test_an_unconfirmed_switch_is_undone_by_the_next_run(fleet: Fleet) -> None:
    """A switch whose script died after recording the links: the next run puts them back."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    root = fleet.root("web01")
    before = fleet.link("web01")
    pending = root / ".fleetdist" / "dist" / ".fleetdist" / "switching"
    pending.mkdir()
    (pending / "0.dest").write_text(str(root / "lib" / "app") + "\n")
    (pending / "0.link").write_text(f"{before}\n")
    (pending / "id").write_text("dist-dead\n")
    os.symlink("versions/app.9.deadbee", root / "lib" / ".tmp")
    os.replace(root / "lib" / ".tmp", root / "lib" / "app")
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 0, done.err
    assert fleet.link("web01") == before
    assert not pending.exists()
    ledger = (root / ".fleetdist" / "dist" / ".fleetdist" / "ledger.jsonl").read_text()
    assert '"action":"recover"' in ledger


@pytest.mark.parametrize(
    ("dest", "why"),
    [
        ("{DEPLOY_ROOT}/bin/my tool", "cannot be a dist name"),
        ("{DEPLOY_ROOT}/bin/-x", "cannot be a dist name"),
        ("{DEPLOY_ROOT}/b\nin/tool", "control character"),
    ],
)
def test_names_that_cannot_cross_to_a_host_are_refused_first(
    fleet: Fleet, dest: str, why: str
) -> None:
    dist = {**DIST, "targets": {"t": {"source": "tool.sh", "destination": dest}}}
    write(fleet.repo / "dist.json", json.dumps(dist))
    commit(fleet.repo, "hostile")
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and why in done.err
    assert not fleet.hosts.exists(), "nothing was sent"


@pytest.mark.parametrize(
    ("dest", "host_vars", "why"),
    [
        ("lib/tool", {}, "is not absolute on a host"),
        ("{DEPLOY_ROOT}/{SUB}/tool", {"SUB": "../../../etc"}, "'..'"),
        ("{DEPLOY_ROOT}/./bin/tool", {}, "'.'"),
        ("{DEPLOY_ROOT}/{SUB}/tool", {"SUB": ".fleetdist/dist"}, "fleetdist's own"),
        ("{DEPLOY_ROOT}/.fleetdist/dist/.fleetdist/x", {}, "fleetdist's own"),
    ],
)
def test_a_destination_that_leaves_where_it_says_is_refused_first(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, dest: str, host_vars: dict[str, str], why: str
) -> None:
    """A relative destination would be this machine's working directory on every host; a
    `..` (from dist.json or a host's value) would land elsewhere than written; fleetdist's
    own records are never a destination."""
    monkeypatch.setenv("SUB", "lib")
    dist = {**DIST, "targets": {"t": {"source": "tool.sh", "destination": dest}}}
    write(fleet.repo / "dist.json", json.dumps(dist))
    commit(fleet.repo, "hostile")
    fleet.inventory(web01=host_vars)
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and why in done.err and "web01" in done.err, done.err
    assert len(done.err.strip().splitlines()) == 1
    assert not fleet.hosts.exists(), "nothing was sent"


def test_a_deploy_root_from_nowhere_is_refused(fleet: Fleet) -> None:
    inv = fleet.project / "inventories" / "local.yaml"
    doc = yaml.safe_load(inv.read_text())
    del doc["defaults"]["vars"]["DEPLOY_ROOT"]
    inv.write_text(yaml.safe_dump(doc))
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and "web01: DEPLOY_ROOT is not set" in done.err


def test_flags_without_a_fleet_meaning_are_usage_errors(fleet: Fleet) -> None:
    done = fleet.dist("--delete", "--hosts", "web01")
    assert done.code == 2 and "--delete: not with --hosts" in done.err


def test_host_facts_are_read_only_through_the_name_grammar() -> None:
    out = "\n".join(
        [
            "@@dv 0 app.0.abcdef1",
            "@@dv 0 ../../etc",
            "@@dv 1 app.1.abcdef1",
            "@@dv 7 app.2",
            "@@dl 0 app.0.abcdef1 extra",
            "@@dl 0 -rf",
            "@@df 1",
            "noise @@dv 0 app.3",
        ]
    )
    facts = parse_facts(out, 2)
    assert facts[0].versions == ("app.0.abcdef1",) and facts[0].linked is None
    assert facts[1].versions == ("app.1.abcdef1",) and facts[1].blocked


def _view(fleet: Fleet, verb: str, *args: str) -> Done:
    old = Path.cwd()
    os.chdir(fleet.repo)
    try:
        fleet.capsys.readouterr()
        code = main([verb, "--dist", "--project", str(fleet.project), "--json", *args])
    finally:
        os.chdir(old)
    got = fleet.capsys.readouterr()
    return Done(code, got.out, got.err)


def test_status_and_history_show_dist_targets_on_each_host(fleet: Fleet) -> None:
    assert fleet.dist("--hosts", "web*").code == 1
    head = git(fleet.repo, "rev-parse", "--short=7", "HEAD")
    status = _view(fleet, "status")
    assert status.code == 0, status.err
    rows = {(h["host"], t["target"]): t for h in status.json()["hosts"] for t in h["targets"]}
    assert rows["web01", "app"]["version"] == f"app.0.{head}"
    assert rows["web01", "tool"]["version"] == f"tool.0.{head}"
    assert rows["web02", "app"]["version"] is None and rows["web02", "app"]["versions"] == 0
    history = _view(fleet, "history")
    assert history.code == 0, history.err
    seen = {(e["host"], e["action"], e["result"]) for e in history.json()["entries"]}
    assert seen == {("web01", "dist", "ok"), ("web02", "dist", "failed"), ("web03", "dist", "ok")}


def test_a_lease_held_by_another_run_is_exit_4_and_an_unreachable_host_exit_5(
    fleet: Fleet,
) -> None:
    fleet.inventory()
    lock = fleet.root("web01") / ".fleetdist" / "dist" / ".fleetdist" / "lock"
    lock.mkdir(parents=True)
    (lock / "run").write_text("other-run\n")
    (lock / "holder").write_text("someone else\n")
    (lock / "expires").write_text("9999999999\n")
    held = fleet.dist("--hosts", "web01", "--json")
    assert held.code == 4 and held.json()["hosts"][0]["status"] == "locked"
    assert fleet.link("web01") is None
    (fleet.hosts / "web03").write_text("not a directory")
    gone = fleet.dist("--hosts", "web02,web03", "--json")
    assert gone.code == 5, gone.err
    assert {h["host"]: h["status"] for h in gone.json()["hosts"]} == {
        "web02": "ok",
        "web03": "unreachable",
    }


def test_match_content_relinks_an_equal_version_as_a_local_dist_does(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = json.loads(json.dumps(DIST))
    dist["targets"]["doc"] = {
        "source": "doc.txt",
        "destination": "{DEPLOY_ROOT}/share/doc.txt",
        "options": {"match": "content"},
    }
    dist["fleetdist"]["test"] = ["test -e a.txt || test -e doc.txt.0.* || test -x tool.0.*"]
    write(fleet.repo / "dist.json", json.dumps(dist))
    write(fleet.repo / "doc.txt", "docs v1\n")
    c1 = commit(fleet.repo, "doc")
    local = tmp_path / "local" / ROOT.lstrip("/")

    def both() -> None:
        assert fleet.dist("--hosts", "web01").code == 0
        monkeypatch.setenv("DEPLOY_ROOT", str(local))
        assert fleet.dist("-y").code == 0
        monkeypatch.delenv("DEPLOY_ROOT")

    both()
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "app only")
    both()
    assert fleet.link("web01", "share/doc.txt") == f"versions/doc.txt.0.{c1}"
    write(fleet.repo / "doc.txt", "docs v2\n")
    commit(fleet.repo, "doc v2")
    both()
    assert fleet.link("web01", "share/doc.txt").startswith("versions/doc.txt.1.")  # type: ignore[union-attr]
    write(fleet.repo / "doc.txt", "docs v1\n")
    commit(fleet.repo, "doc back")
    both()
    assert fleet.link("web01", "share/doc.txt") == f"versions/doc.txt.0.{c1}"
    remote = snapshot(fleet.root("web01"), fleet.repo)
    remote = {k: v for k, v in remote.items() if not k.startswith(".fleetdist")}
    assert remote == snapshot(local, fleet.repo)


def test_fleet_flags_without_hosts_are_usage_errors(fleet: Fleet) -> None:
    done = fleet.dist("--canary", "1", "-y")
    assert done.code == 2 and "--canary: only with --hosts" in done.err


def test_a_hostile_deploy_root_is_refused(fleet: Fleet) -> None:
    fleet.inventory(web01={"DEPLOY_ROOT": "/srv/../etc"})
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and "host web01: DEPLOY_ROOT" in done.err and "'..'" in done.err


def test_cache_hosts_refreshes_each_hosts_cache_as_local_cache_does(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = fleet.project / "inventories" / "local.yaml"
    fleet.inventory()
    doc = yaml.safe_load(inv.read_text())
    doc["defaults"]["vars"]["CACHE_ROOT"] = "/var/cache/dist"
    inv.write_text(yaml.safe_dump(doc))
    assert fleet.dist("--hosts", "web01").code == 0

    def cache(*args: str) -> Done:
        fleet.capsys.readouterr()
        code = main(["cache", "--project", str(fleet.project), "--json", *args])
        got = fleet.capsys.readouterr()
        return Done(code, got.out, got.err)

    stale = cache("-d", "--hosts", "web01")
    assert stale.code == 10 and stale.json()["hosts"][0]["result"] == "stale"
    done = cache("--hosts", "web01")
    assert done.code == 0 and done.json()["hosts"][0]["result"].startswith("copied ")
    assert cache("--hosts", "web01", "-t", "0").json()["hosts"][0]["result"] == "fresh"
    assert cache("--hosts", "web01").json()["hosts"][0]["result"] == "skipped"  # within TTL
    here = tmp_path / "local-cache"
    monkeypatch.setenv("DEPLOY_ROOT", str(fleet.root("web01")))
    monkeypatch.setenv("CACHE_ROOT", str(here))
    assert main(["cache"]) == 0
    remote = snapshot(fleet.hosts / "web01" / "var" / "cache" / "dist", fleet.repo)
    local = snapshot(here, fleet.repo)
    assert "lib/versions/app.0." in " ".join(remote)
    drop = (".distman/last_check",)
    assert {k: v for k, v in remote.items() if k not in drop} == {
        k: v for k, v in local.items() if k not in drop
    }


def test_a_host_value_in_a_test_is_data_never_shell(fleet: Fleet, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    fleet.inventory(web01={"MUST": f"$(touch {pwned})"})
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 1 and "in-place test failed" in done.json()["hosts"][0]["error"]
    assert not pwned.exists()


def test_names_on_a_host_never_forge_facts(fleet: Fleet) -> None:
    """Files a host holds that look like protocol lines are neither printed nor read."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    versions = fleet.root("web01") / "lib" / "versions"
    (versions / "app.7.abcdef1\n@@dv 0 app.9.abcdef1").mkdir()
    (versions / "app.8.$(touch x)").mkdir()
    os.symlink("../../../etc", fleet.root("web01") / "lib" / ".tmp")
    os.replace(fleet.root("web01") / "lib" / ".tmp", fleet.root("web01") / "lib" / "app")
    status = _view(fleet, "status", "-H", "web01")
    app = next(t for t in status.json()["hosts"][0]["targets"] if t["target"] == "app")
    assert app == {"target": "app", "link": app["link"], "version": "?", "versions": 1}


def test_a_local_dist_holding_the_folder_is_waited_for(fleet: Fleet) -> None:
    """A local `fleetdist dist` holds flock on each destination folder for its whole run:
    the host's switch waits for it rather than moving a link in the middle of it."""
    fleet.inventory()
    folder = fleet.root("web01") / "lib"
    folder.mkdir(parents=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    released: list[float] = []

    def release() -> None:
        time.sleep(1.0)
        released.append(time.monotonic())
        os.close(fd)

    thread = threading.Thread(target=release)
    thread.start()
    try:
        assert fleet.dist("--hosts", "web01").code == 0
    finally:
        thread.join()
    linked = (folder / "app").lstat().st_mtime
    assert released and fleet.link("web01", "lib/app") is not None
    assert linked >= time.time() - (time.monotonic() - released[0]) - 0.05


def test_a_dry_run_writes_nothing_and_names_what_a_run_links(fleet: Fleet) -> None:
    fleet.inventory()
    dry = fleet.dist("-d", "--hosts", "web01,web02", "--json")
    assert dry.code == 0, dry.err
    assert not fleet.hosts.exists(), "a dry run writes nothing on a host"
    hosts = {h["host"]: h for h in dry.json()["hosts"]}
    assert [s["name"] for s in hosts["web01"]["steps"]] == ["probe", "stage", "activate"]
    predicted = {t["link"]: t["version"] for t in hosts["web01"]["targets"]}
    assert fleet.dist("--hosts", "web01,web02").code == 0
    for link, version in predicted.items():
        assert os.readlink(link) == f"versions/{version}"
    assert "test ok = ok" in hosts["web02"]["steps"][1]["script"]
    missing = fleet.dist("-d", "-n", "5", "--hosts", "web01", "--json")
    assert missing.code == 1 and "Target version 5 not found" in missing.json()["hosts"][0]["error"]


def test_rollback_of_a_dist_run_is_refused_in_one_line(fleet: Fleet) -> None:
    fleet.inventory()
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 0
    fleet.capsys.readouterr()
    code = main(["rollback", "--project", str(fleet.project), "--run", done.json()["run_id"]])
    err = fleet.capsys.readouterr().err
    assert code == 2 and "was a dist, not a deploy, rollback or runbook" in err
    assert len(err.strip().splitlines()) == 1


def test_a_canary_whose_switch_fails_is_put_back_and_stops_the_rollout(fleet: Fleet) -> None:
    """The canary's `.app.dist` is a directory, so its switch fails after moving links:
    they go straight back, and no other host is switched."""
    fleet.inventory()
    (fleet.root("web01") / "lib" / ".app.dist").mkdir(parents=True)
    done = fleet.dist("--hosts", "web*", "--canary", "1", "--json")
    assert done.code == 3, done.err
    doc = done.json()
    assert doc["aborted"] == "canary failed"
    status = {h["host"]: h["status"] for h in doc["hosts"]}
    assert status == {"web01": "reverted", "web02": "skipped", "web03": "skipped"}
    assert doc["hosts"][0]["failed_step"] == "activate"
    for host in HOSTS:
        assert fleet.link(host) is None and fleet.link(host, "bin/tool") is None
    ledger = (
        fleet.root("web01") / ".fleetdist" / "dist" / ".fleetdist" / "ledger.jsonl"
    ).read_text()
    assert '"action":"recover"' in ledger


def test_the_lease_of_a_dead_run_is_taken_over(fleet: Fleet) -> None:
    """A run whose controller died (its journal here, unlocked) does not block the next."""
    fleet.inventory()
    dead = "20260101T000000.000Z-dead00"
    runs = fleet.project / ".fleetdist" / "runs"
    runs.mkdir(parents=True)
    (runs / f"{dead}.jsonl").write_text(
        json.dumps(
            {"kind": "run", "run_id": dead, "time": "2026-01-01T00:00:00Z", "action": "dist"}
        )
        + "\n"
    )
    lock = fleet.root("web01") / ".fleetdist" / "dist" / ".fleetdist" / "lock"
    lock.mkdir(parents=True)
    (lock / "run").write_text(f"{dead}\n")
    (lock / "holder").write_text(f"me@ctl pid=1 run={dead}\n")
    (lock / "expires").write_text("9999999999\n")
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 0, done.err
    assert fleet.link("web01") is not None


def test_hosts_waiting_for_their_batch_have_their_dist_lease_renewed(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal a slow rollout sends reaches the dist lease (in the host's dist state),
    not a release layout's: with a lease that is always a third gone, every batch first
    renews every host still waiting (web03 three times), and all still switch."""
    from fleetdist.distman import fleet as distfleet
    from fleetdist.release.lease import LockSpec

    always = lambda run_id, wait: LockSpec(run_id, f"test run={run_id}", lease=0, wait=wait)  # noqa: E731
    monkeypatch.setattr(distfleet, "lock_spec", always)
    fleet.inventory()
    done = fleet.dist("--hosts", "web*", "--batch", "1", "--json")
    assert done.code == 0, done.err
    journal = fleet.project / ".fleetdist" / "runs" / f"{done.json()['run_id']}.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    renewed = sorted(e["host"] for e in events if e.get("stage") == "renewed")
    assert renewed == ["web01", "web02", "web02", "web03", "web03", "web03"]
    assert all(fleet.link(h) for h in ("web01", "web02", "web03"))


def test_a_recovery_that_died_half_way_is_finished_by_the_next(fleet: Fleet) -> None:
    """`dist_recover` is itself killed after putting a `.dist` file back (here: its epoch
    bump fails): the next recovery still restores that file, never deletes it."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    root = fleet.root("web01")
    before, info = fleet.link("web01"), (root / "lib" / ".app.dist").read_text()
    pending = root / ".fleetdist" / "dist" / ".fleetdist" / "switching"
    pending.mkdir()
    (pending / "0.dest").write_text(str(root / "lib" / "app") + "\n")
    (pending / "0.link").write_text(f"{before}\n")
    (pending / "0.info").write_text(info)
    (pending / "id").write_text("dist-dead\n")
    os.symlink("versions/app.9.deadbee", root / "lib" / ".tmp")
    os.replace(root / "lib" / ".tmp", root / "lib" / "app")
    (root / "lib" / ".app.dist").write_text("commit: deadbee\n")
    os.rename(root / ".distman", root / ".distman.kept")
    (root / ".distman").write_text("not a folder: the epoch cannot be written\n")
    assert fleet.dist("--hosts", "web01").code == 1
    assert pending.is_dir(), "the record stays until a recovery completes"
    os.remove(root / ".distman")
    os.rename(root / ".distman.kept", root / ".distman")
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 0, done.err
    assert fleet.link("web01") == before
    assert (root / "lib" / ".app.dist").read_text() == info
    assert not pending.exists()


def test_a_fifo_in_the_pipelines_result_is_refused_not_read(fleet: Fleet) -> None:
    """A pipeline that leaves a fifo (or a device) would have the copy read it as a file:
    forever, or whatever a writer sends.  It is refused in one line; nothing is sent."""
    feed = "import os; os.write(os.open('{output}/pipe', os.O_WRONLY), b'fed')"  # never O_CREAT
    make = f'mkfifo {{output}}/pipe && (timeout 5 python3 -c "{feed}" >/dev/null 2>&1 &)'
    pipeline = {"mk": {"script": "cp -r {input}/. {output}/ && " + make}}
    dist = {**DIST, "targets": {"app": {**DIST["targets"]["app"], "pipeline": pipeline}}}
    write(fleet.repo / "dist.json", json.dumps(dist))
    commit(fleet.repo, "a fifo")
    fleet.inventory()
    done = fleet.dist("--hosts", "web01")
    assert done.code == 1 and "pipe: a fifo" in done.err, done.err
    assert not fleet.hosts.exists(), "nothing was sent"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{", "dist.json: failed to parse"),
        (json.dumps({**DIST, "version": 2}), "dist.json: version: newer"),
        (json.dumps({**DIST, "fleetdist": {"test": [1]}}), "dist.json: fleetdist.test[0]"),
        (
            json.dumps(
                {**DIST, "targets": {"t": {"source": "tool.sh", "destination": "{NOPE}/t"}}}
            ),
            "host web01: Cannot resolve token: NOPE in <dest> for t",
        ),
    ],
)
def test_a_bad_dist_json_is_a_configuration_error_across_hosts(
    fleet: Fleet, text: str, why: str
) -> None:
    """distman's exit 1 for a bad dist.json; across hosts it is exit 2, as a bad recipe."""
    write(fleet.repo / "dist.json", text)
    commit(fleet.repo, "bad")
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and why in done.err, done.err
    assert len(done.err.strip().splitlines()) == 1


def test_a_version_number_taken_meanwhile_is_never_used_twice(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local `fleetdist dist` makes `app.0.<other>` on the host after the probe read
    its versions: the host's stage must not add a second version 0 beside it."""
    from fleetdist.orchestrate.distrun import DistRollout

    fleet.inventory()
    versions = fleet.root("web01") / "lib" / "versions"
    original = DistRollout._test

    def local_dist_meanwhile(self: DistRollout, *args: Any) -> Any:
        versions.mkdir(parents=True, exist_ok=True)
        (versions / "app.0.1234567").mkdir(exist_ok=True)
        return original(self, *args)

    monkeypatch.setattr(DistRollout, "_test", local_dist_meanwhile)
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 1 and "app.0 appeared meanwhile" in done.err, done.err
    assert sorted(p.name for p in versions.iterdir()) == ["app.0.1234567"]
    monkeypatch.setattr(DistRollout, "_test", original)
    assert fleet.dist("--hosts", "web01").code == 0
    head = git(fleet.repo, "rev-parse", "--short=7", "HEAD")
    assert fleet.link("web01") == f"versions/app.1.{head}"


def test_a_move_on_a_host_where_one_target_has_no_versions_moves_the_others(
    fleet: Fleet,
) -> None:
    """As distman: `-n` leaves a target without versions alone, and moves the rest."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    first = fleet.link("web01")
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    assert fleet.dist("--hosts", "web01").code == 0
    tool = fleet.root("web01") / "bin"
    for p in (tool / "tool", tool / ".tool.dist"):
        p.unlink()
    for p in (tool / "versions").iterdir():
        p.rmdir() if p.is_dir() else p.unlink()
    done = fleet.dist("-n", "0", "--hosts", "web01", "--json")
    assert done.code == 0, done.err
    assert fleet.link("web01") == first
    again = fleet.dist("-n", "0", "--hosts", "web01", "--json")
    assert again.code == 0, again.err
    assert again.json()["hosts"][0]["status"] == "unchanged"


@pytest.mark.parametrize("cache_root", [ROOT, ROOT + "/cache", "/srv"])
def test_a_cache_root_overlapping_the_deploy_root_is_refused(fleet: Fleet, cache_root: str) -> None:
    """A cache inside the deploy root would copy itself into itself, level after level;
    one holding it, or the root itself, would copy onto what it reads."""
    fleet.inventory(web01={"CACHE_ROOT": cache_root})
    assert fleet.dist("--hosts", "web01").code == 0
    fleet.capsys.readouterr()
    code = main(["cache", "--project", str(fleet.project), "--hosts", "web01"])
    err = fleet.capsys.readouterr().err
    assert code == 2 and "host web01" in err and "overlap" in err, err
    assert not (fleet.root("web01") / "cache").exists()


KILLER = """#!/bin/sh
# date, except on a switch's epoch bump: kill -9 every sh above (the whole host script),
# the outermost first, so no subshell's death is seen by a parent still running
if [ "$1" = "+%s%N" ] && [ ! -e "$KILLED" ]; then
    : > "$KILLED"
    p=$PPID pids=""
    while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" = sh ]; do
        pids="$p $pids"
        p=$(cut -d' ' -f4 /proc/$p/stat)
    done
    kill -9 $pids
    exit 1
fi
exec /bin/date "$@"
"""


def test_a_switch_killed_before_its_epoch_is_undone_links_dist_files_and_epoch(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host script is killed (-9) after moving every link and `.dist` file, before
    the epoch: the next run's probe puts links and files back and bumps the epoch."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    root = fleet.root("web01")
    before = {rel: fleet.link("web01", rel) for rel in ("lib/app", "bin/tool")}
    infos = {p: (root / p).read_text() for p in ("lib/.app.dist", "bin/.tool.dist")}
    epoch = (root / ".distman" / "epoch").read_text()
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    bin_dir = tmp_path / "killer"
    write(bin_dir / "date", KILLER, 0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KILLED", str(tmp_path / "killed"))
    killed = fleet.dist("--hosts", "web01")
    assert killed.code == 1 and (tmp_path / "killed").exists(), killed.err
    assert fleet.link("web01") != before["lib/app"], "the kill came after the links moved"
    fleet.inventory(web01={"MUST": "broken"})  # the next run recovers, then stops at its test
    again = fleet.dist("--hosts", "web01", "--json")
    assert again.code == 1 and "in-place test failed" in again.err
    assert {rel: fleet.link("web01", rel) for rel in before} == before
    assert {p: (root / p).read_text() for p in infos} == infos
    assert (root / ".distman" / "epoch").read_text() != epoch
    assert not (root / ".fleetdist" / "dist" / ".fleetdist" / "switching").exists()


@pytest.mark.parametrize(
    ("link", "text"), [("lib", ".fleetdist/dist"), ("lib/versions", "../.fleetdist/dist")]
)
def test_a_symlinked_folder_into_fleetdists_records_is_refused_on_the_host(
    fleet: Fleet, link: str, text: str
) -> None:
    """`lib` (or `lib/versions`) on the host is a link into `.fleetdist`: the controller
    checked the path as text, so the host checks where the folder really is before it
    writes there."""
    fleet.inventory()
    root = fleet.root("web01")
    (root / ".fleetdist" / "dist").mkdir(parents=True)
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(text, root / link)
    done = fleet.dist("--hosts", "web01", "--json")
    assert done.code == 1 and "fleetdist's own records" in done.err, done.err
    assert not (root / ".fleetdist" / "dist" / "versions").exists()
    assert not (root / ".fleetdist" / "dist" / "app").is_symlink()


def test_resume_refuses_a_repo_that_moved_on(fleet: Fleet) -> None:
    """`--resume` finishes the dist it names: after a new commit it would link that one
    on the hosts left, beside hosts holding the old one, under the same run."""
    first = fleet.dist("--hosts", "web*", "--json")
    assert first.code == 1
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    fleet.inventory()
    done = fleet.dist("--resume", "last")
    assert done.code == 2 and "--resume" in done.err and "HEAD" in done.err, done.err
    assert fleet.link("web02") is None


@pytest.mark.parametrize("command", ['test "{MUST}" = ok', "test '{MUST}' = ok"])
def test_a_host_value_inside_quotes_in_a_test_never_runs(
    fleet: Fleet, tmp_path: Path, command: str
) -> None:
    """A quoted value inside the author's own quotes closes them: `"'$(cmd)'"` runs cmd.
    Inside quotes only plain text is filled in; anything else is refused before any
    host is touched."""
    pwned = tmp_path / "pwned"
    write(fleet.repo / "dist.json", json.dumps({**DIST, "fleetdist": {"test": [command]}}))
    commit(fleet.repo, "quoted")
    fleet.inventory(web01={"MUST": f"$(touch {pwned})"})
    done = fleet.dist("--hosts", "web01")
    assert not pwned.exists()
    assert done.code == 2 and "web01" in done.err and "{MUST}" in done.err, done.err
    assert not fleet.hosts.exists()
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0, "plain values fill quotes as written"


def test_fill_reads_the_shell_quoting_around_each_token() -> None:
    from fleetdist.distman.hostplan import fill

    values = {"A": "a b", "P": "plain-1.0"}
    assert (
        fill("echo {A} '{P}' \"{P}\" '{print}'", values)
        == "echo 'a b' 'plain-1.0' \"plain-1.0\" '{print}'"
    )
    assert fill('echo \\"{A}', values) == "echo \\\"'a b'"
    assert fill('echo "it\'s {A}"', {"A": "x"}) == 'echo "it\'s x"'
    with pytest.raises(ConfigError, match=r"\{A\} is inside quotes"):
        fill('echo "{A}"', values)


def test_a_recorded_link_text_comes_back_exactly(fleet: Fleet) -> None:
    """A link that pointed elsewhere, its text starting and ending with a space: the
    recovery puts that text back, not a trimmed one."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    root = fleet.root("web01")
    pending = root / ".fleetdist" / "dist" / ".fleetdist" / "switching"
    pending.mkdir()
    (pending / "0.dest").write_text(str(root / "lib" / "app") + "\n")
    (pending / "0.link").write_text(" ../elsewhere/app \n")
    (pending / "id").write_text("dist-dead\n")
    fleet.inventory(web01={"MUST": "broken"})  # recover, then stop at the test
    assert fleet.dist("--hosts", "web01").code == 1
    assert fleet.link("web01") == " ../elsewhere/app "


def test_a_token_only_the_hosts_know_resolves_on_each_host(fleet: Fleet) -> None:
    """`{ROLE}` in a destination comes from each host's inventory vars; this machine has
    no ROLE, and needs none: it never links anything itself."""
    dist = {
        **DIST,
        "targets": {"app": {"source": "app", "destination": "{DEPLOY_ROOT}/{ROLE}/app"}},
    }
    write(fleet.repo / "dist.json", json.dumps(dist))
    commit(fleet.repo, "per-host folder")
    fleet.inventory(web01={"ROLE": "front"}, web02={"ROLE": "back"})
    done = fleet.dist("--hosts", "web01,web02")
    assert done.code == 0, done.err
    assert fleet.link("web01", "front/app") is not None
    assert fleet.link("web02", "back/app") is not None
    status = _view(fleet, "status", "-H", "web01")
    assert status.code == 0, status.err
    assert status.json()["hosts"][0]["targets"][0]["link"].endswith("/front/app")
    lacking = fleet.dist("--hosts", "web03")
    assert lacking.code == 2 and "host web03" in lacking.err and "ROLE" in lacking.err


def test_a_dist_field_with_a_newline_never_forges_a_line_of_the_dist_file(fleet: Fleet) -> None:
    """`.NAME.dist` is one `key: value` line per field: an author holding a newline would
    add a `commit:` line of its choosing there (and `-n` rewrites every `commit:` line)."""
    write(fleet.repo / "dist.json", json.dumps({**DIST, "author": "me\ncommit: 0000000"}))
    commit(fleet.repo, "forged")
    fleet.inventory()
    done = fleet.dist("--hosts", "web01")
    assert done.code == 2 and "author" in done.err, done.err
    assert len(done.err.strip().splitlines()) == 1
    assert not fleet.hosts.exists()


def test_a_bad_cache_ttl_is_a_configuration_error(fleet: Fleet) -> None:
    fleet.inventory(web01={"CACHE_ROOT": "/var/cache/dist", "CACHE_TTL": "soon"})
    fleet.capsys.readouterr()
    code = main(["cache", "--project", str(fleet.project), "--hosts", "web01"])
    err = fleet.capsys.readouterr().err
    assert code == 2 and "host web01: CACHE_TTL" in err, err


def test_a_dist_file_that_is_a_symlink_is_never_read_through(fleet: Fleet, tmp_path: Path) -> None:
    """`.app.dist` on the host links to a file elsewhere: a move rewrites the `.dist`
    file without copying that file's content into it."""
    fleet.inventory()
    assert fleet.dist("--hosts", "web01").code == 0
    write(fleet.repo / "app" / "a.txt", "v2\n")
    commit(fleet.repo, "second")
    assert fleet.dist("--hosts", "web01").code == 0
    secret = tmp_path / "secret"
    secret.write_text("commit: 1234567\npassword: hunter2\n")
    info = fleet.root("web01") / "lib" / ".app.dist"
    info.unlink()
    os.symlink(secret, info)
    done = fleet.dist("-n", "0", "--hosts", "web01")
    assert done.code == 0, done.err
    assert "hunter2" not in info.read_text() and not info.is_symlink()
    assert secret.read_text() == "commit: 1234567\npassword: hunter2\n"
