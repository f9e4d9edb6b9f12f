"""The per-app lease on each host: refused while live, taken over when expired, breakable."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fleetdist import api
from fleetdist.config.project import Project as FleetProject
from fleetdist.release.command import assign, raw, script
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.lease import LOCK_HELD, LockSpec, variables
from fleetdist.release.shlib import library
from fleetdist.report.outcome import FleetOutcome, Status

from .conftest import HOSTS, Project

HOLDER = "mallory@elsewhere pid=4242 run=20990101T000000Z-abcdef"


def hold_lease(project: Project, host: str, *, seconds: int, holder: str = HOLDER) -> Path:
    """Simulate another controller's lease on `host` (expiring `seconds` from now)."""
    lock = project.host_root(host) / ".fleetdist" / "lock"
    lock.mkdir(parents=True)
    (lock / "run").write_text(holder.rpartition("run=")[2] + "\n")
    (lock / "holder").write_text(holder + "\n")
    (lock / "expires").write_text(f"{int(time.time()) + seconds}\n")
    return lock


def test_live_lease_refuses_the_deploy_naming_the_holder(project: Project) -> None:
    lock = hold_lease(project, "web01", seconds=600)
    result = project.run("deploy", "--json")
    assert result.code == 4, result.err + result.out
    by_host = {h["host"]: h for h in result.json()["hosts"]}
    assert by_host["web01"]["status"] == "locked"
    assert by_host["web01"]["failed_step"] == "lock"
    assert f"locked by {HOLDER}" in by_host["web01"]["error"]
    # The locked host is untouched; the lease is still the other operator's.
    assert project.current("web01") is None
    assert project.releases("web01") == set()
    assert project.ledger("web01") == []
    assert (lock / "holder").read_text().strip() == HOLDER
    # The others went ahead.
    assert project.current("web02") and project.current("web03")


def test_locked_message_on_stderr_without_json(project: Project) -> None:
    hold_lease(project, "web02", seconds=600)
    result = project.run("deploy", "-H", "web02")
    assert result.code == 4
    assert f"web02: host web02: locked by {HOLDER}" in result.err


def test_live_lease_blocks_rollback_too(project: Project) -> None:
    project.deploy("-H", "web01")
    project.bump("v2")
    v2 = project.deploy("-H", "web01")
    hold_lease(project, "web01", seconds=600)
    result = project.run("rollback", "-H", "web01")
    assert result.code == 4
    assert project.current("web01") == v2


def test_expired_lease_is_taken_over(project: Project) -> None:
    lock = hold_lease(project, "web01", seconds=-5)
    rid = project.deploy()
    assert all(project.current(h) == rid for h in HOSTS)
    assert not lock.exists(), "taken over, then given back at the end"
    assert not list(lock.parent.glob("lock.stale.*"))


def test_force_unlock_breaks_a_live_lease_and_records_it(project: Project) -> None:
    lock = hold_lease(project, "web01", seconds=600)
    result = project.run("deploy", "--force-unlock", "--json")
    assert result.code == 0, result.err + result.out
    rid = result.json()["release_id"]
    assert project.current("web01") == rid
    assert not lock.exists()
    actions = [(e["action"], e["result"]) for e in project.ledger("web01")]
    assert actions == [("unlock", "ok"), ("deploy", "ok")]
    assert project.ledger("web01")[0]["operator"]
    # Hosts without a lease record no unlock.
    assert [e["action"] for e in project.ledger("web02")] == ["deploy"]


def test_unlock_verb(project: Project) -> None:
    lock = hold_lease(project, "web03", seconds=600)
    result = project.run("unlock", "-H", "web03")
    assert result.code == 0, result.err
    assert not lock.exists()
    assert project.ledger("web03")[-1]["action"] == "unlock"


def test_lease_wait_outlasts_a_short_lease(project: Project) -> None:
    hold_lease(project, "web01", seconds=1)
    result = project.run("deploy", "-H", "web01", "--lock-wait", "5", "--json")
    assert result.code == 0, result.err + result.out


def test_concurrent_deploys_second_is_refused(project: Project) -> None:
    """Two real rollouts at once: the second finds the first one's lease on web01."""
    project.write_recipe(hooks={"before_activate": ["sleep 2"], "after_activate": []})
    sel = api.Selection(FleetProject(project.root), hosts=("web01",))
    outcomes: list[FleetOutcome] = []
    first = threading.Thread(target=lambda: outcomes.append(api.deploy(sel, api.DeployOptions())))
    first.start()
    lock = project.host_root("web01") / ".fleetdist" / "lock"
    deadline = time.monotonic() + 10
    while not (lock / "holder").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        result = project.run("deploy", "-H", "web01", "--json")
    finally:
        first.join(timeout=30)
    assert result.code == 4, result.err + result.out
    [host] = result.json()["hosts"]
    assert host["status"] == "locked"
    assert "locked by " in host["error"]
    assert f"run={outcomes[0].run_id}" in host["error"], "the message names the holder"
    [done] = outcomes
    assert done.hosts["web01"].status == Status.OK, done.hosts["web01"].error
    assert project.current("web01") == done.release_id
    assert [e["action"] for e in project.ledger("web01")] == ["deploy"]


def journal_of(project: Project, run: str) -> Path:
    """A run journal on this controller, as a run that has ended (or died) leaves it."""
    runs = project.root / ".fleetdist" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{run}.jsonl"
    path.write_text('{"kind": "run"}\n')
    return path


def test_lease_of_a_dead_run_on_this_controller_is_taken_over(project: Project) -> None:
    """Its journal is here and nobody holds its lock: the kernel says the run is dead."""
    holder = "ops@elsewhere pid=1 run=20990101T000000Z-dead00"
    journal_of(project, "20990101T000000Z-dead00")
    lock = hold_lease(project, "web01", seconds=600, holder=holder)
    result = project.run("deploy", "-H", "web01", "--json")
    assert result.code == 0, result.err + result.out
    assert project.current("web01") == result.json()["release_id"]
    assert not lock.exists()


def test_a_dead_pid_with_this_hostname_proves_nothing(project: Project) -> None:
    """Another machine with this name, or a controller in another PID namespace."""
    proc = subprocess.Popen(["true"])
    proc.wait()  # its pid now names no process here
    holder = f"ops@{socket.gethostname()} pid={proc.pid} run=20990101T000000Z-dead00"
    hold_lease(project, "web01", seconds=600, holder=holder)
    result = project.run("deploy", "-H", "web01")
    assert result.code == 4, result.err
    assert f"locked by {holder}" in result.err


def test_lease_of_a_live_run_on_this_controller_is_respected(project: Project) -> None:
    """A run whose controller still holds its journal's lock is alive, whatever its pid says."""
    run = "20990101T000000Z-live01"
    holder = f"ops@{socket.gethostname()} pid=999999 run={run}"
    with journal_of(project, run).open("rb") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        hold_lease(project, "web01", seconds=600, holder=holder)
        result = project.run("deploy", "-H", "web01")
    assert result.code == 4, result.err
    assert f"locked by {holder}" in result.err


def test_lease_of_a_live_process_on_this_controller_is_respected(project: Project) -> None:
    holder = f"ops@{socket.gethostname()} pid={os.getpid()} run=20990101T000000Z-live00"
    hold_lease(project, "web01", seconds=600, holder=holder)
    result = project.run("deploy", "-H", "web01")
    assert result.code == 4
    assert f"locked by {holder}" in result.err


def test_contenders_for_a_free_lease_get_exactly_one_holder(tmp_path: Path) -> None:
    """Six scripts race for one app's lease, five rounds: one holder each, the rest `locked`.

    The old mkdir-then-write lease let a contender reading between the two
    see an expired lease and take it too (2-3 holders in 7 of 150 rounds).
    """
    for round_ in range(5):
        layout = ReleaseLayout(str(tmp_path / f"root{round_}"))
        scripts = [
            script(
                [
                    *(assign(k, v) for k, v in layout.variables()),
                    assign("EX_LOCKED", str(LOCK_HELD)),
                    *variables(LockSpec(run_id=f"run{i}", holder=f"c{i}")),
                    library("lease"),
                    raw("lease_take\nsleep 0.3"),
                ]
            ).text
            for i in range(6)
        ]
        procs = [
            subprocess.Popen(["sh", "-c", s], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for s in scripts
        ]
        results = [(p.wait(timeout=60), p.communicate()[1].decode()) for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0] + [LOCK_HELD] * 5, results
        assert all("locked by c" in err for code, err in results if code), results


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ["web02", "web03", "web03"]),
        # --on-failure rollback keeps the leases of hosts cut over, to undo them: renewed too
        (("--on-failure", "rollback"), ["web01", "web01", "web02", "web02", "web03", "web03"]),
    ],
)
def test_a_long_rollout_renews_the_leases_it_still_holds(
    project: Project, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...], expected: list[str]
) -> None:
    """Batches slower than a third of the lease: before each batch, every lease the run
    still holds (hosts not cut over yet, and those kept for --on-failure rollback) is
    renewed (journaled `renewed`), so it cannot expire under them and let another rollout
    take a host this one prepared; quick rollouts send no renewal at all."""
    short = lambda run_id, wait: LockSpec(run_id, f"test run={run_id}", lease=3, wait=wait)  # noqa: E731
    monkeypatch.setattr(api, "lock_spec", short)
    project.write_recipe(healthcheck="sleep 1.2")
    result = project.run("deploy", "--batch", "1", "--json", *flags)
    assert result.code == 0, result.err + result.out
    journal = project.journal(result.json()["run_id"])
    assert sorted(e["host"] for e in journal if e.get("stage") == "renewed") == expected

    monkeypatch.undo()
    project.bump("quick")
    quick = project.run("deploy", "--batch", "1", "--json", *flags)
    assert quick.code == 0
    assert not [e for e in project.journal(quick.json()["run_id"]) if e.get("stage") == "renewed"]
