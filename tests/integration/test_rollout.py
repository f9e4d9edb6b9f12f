"""Rollouts over real SSH: each scenario checks the hosts themselves (docker exec)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .fleet import CROWDED_HOSTS, WEB, Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    return Project(tmp_path / "project", fleet.inventory(tmp_path))


def current(fleet: Fleet, host: str, root: str = ROOT) -> str | None:
    out = fleet.exec(host, ["readlink", f"{root}/current"])
    return out.stdout.strip().removeprefix("releases/") or None


def report(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """The last JSON document the CLI printed (earlier recap tables are skipped)."""
    out = capsys.readouterr().out
    return json.loads(out[out.rindex("\n{\n") + 1 :] if not out.startswith("{") else out)


def deploy(project: Project, monkeypatch: pytest.MonkeyPatch, version: str, *flags: str) -> int:
    monkeypatch.setenv("HELLO_VERSION", version)
    return project.run("deploy", *flags)


def test_deploy_five_hosts_in_parallel(
    fleet: Fleet, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each host records when its in-place test ran; the windows must overlap.
    project.recipe(test=["date +%s.%N > /tmp/t0; sleep 1; date +%s.%N > /tmp/t1"])
    assert project.run("deploy", "--json") == 0
    result = report(capsys)
    target = result["release_id"]
    starts, ends = [], []
    for host in WEB:
        assert current(fleet, host) == target
        assert (
            fleet.exec(host, f"test -f {ROOT}/releases/{target}/.fleetdist-release").returncode == 0
        )
        starts.append(float(fleet.exec(host, "cat /tmp/t0").stdout))
        ends.append(float(fleet.exec(host, "cat /tmp/t1").stdout))
        ledger = fleet.exec(host, f"cat {ROOT}/.fleetdist/ledger.jsonl").stdout.splitlines()
        assert json.loads(ledger[-1])["to"] == target
    assert max(starts) < min(ends), "in-place tests ran one host after another"


def test_incompressible_app_is_sent_as_plain_tar(fleet: Fleet, project: Project) -> None:
    """Hosts unpack the plain tar and get exactly the artifact's files: no gzip needed there."""
    blob = os.urandom(1 << 20)
    (project.root / "app" / "hello" / "blob.bin").write_bytes(blob)
    fleet.exec("web01", "mv /bin/gzip /bin/gzip.off")
    try:
        assert project.run("deploy") == 0
    finally:
        fleet.exec("web01", "mv /bin/gzip.off /bin/gzip")
    [art] = (project.root / "dist").glob("*.tar.gz")
    rid = current(fleet, "web01")
    assert rid is not None and rid in art.name
    want = f"{rid} {hashlib.sha256(art.read_bytes()).hexdigest()}\n"
    for host in WEB:
        release = f"{ROOT}/releases/{rid}"
        got = fleet.exec(host, ["sha256sum", f"{release}/hello/blob.bin"]).stdout.split()[0]
        assert got == hashlib.sha256(blob).hexdigest(), host
        assert fleet.exec(host, ["cat", f"{release}/.fleetdist-release"]).stdout == want
        assert fleet.exec(host, ["ls", "-A", f"{ROOT}/.fleetdist/incoming"]).stdout == ""


def test_secret_is_not_in_the_hosts_process_list(fleet: Fleet, project: Project) -> None:
    """While the in-place test runs, `ps` on the host shows no secret, yet the test gets it."""
    secret = "hunter2 $(id) \\n"
    project.recipe(
        env={"DB_PASSWORD": secret},
        secret_env=["DB_PASSWORD"],
        test=['test "$DB_PASSWORD" = "$(cat /tmp/want)" && touch /tmp/ok && sleep 3'],
    )
    for host in WEB:
        fleet.exec(host, ["sh", "-c", 'printf "%s" "$1" > /tmp/want; rm -f /tmp/ok', "-", secret])
    with ThreadPoolExecutor(max_workers=1) as pool:
        deploying = pool.submit(project.run, "deploy", "-H", "web01")
        listings = []
        for _ in range(100):  # at most ~20 s: the test sleeps 3 s once it has the secret
            listings.append(fleet.exec("web01", ["ps", "-eo", "args"]).stdout)
            if fleet.exec("web01", ["test", "-e", "/tmp/ok"]).returncode == 0:
                listings.append(fleet.exec("web01", ["ps", "-eo", "args"]).stdout)
                break
            time.sleep(0.2)
        assert deploying.result(timeout=120) == 0
    assert fleet.exec("web01", ["test", "-e", "/tmp/ok"]).returncode == 0
    assert "sleep 3" in listings[-1], "the listing was taken while the step ran"
    assert not [ps for ps in listings if "hunter2" in ps]


def test_failing_test_on_one_host(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    old = current(fleet, "web01")
    project.recipe(test=['test "$FLEETDIST_HOST" != web03'])
    assert deploy(project, monkeypatch, "2.0.0", "--json") == 1
    new = report(capsys)["release_id"]
    assert current(fleet, "web03") == old
    for host in ("web01", "web02", "web04", "web05"):
        assert current(fleet, host) == new
    last = json.loads(fleet.exec("web03", f"tail -1 {ROOT}/.fleetdist/ledger.jsonl").stdout)
    assert last["result"] == "failed" and last["step"] == "test"


def test_unreachable_host(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    inventory = fleet.inventory(
        tmp_path,
        services=("web01",),
        extra={"hosts": {"ghost": {"hostname": "127.0.0.1", "port": closed}}},
    )
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "p", inventory)
    assert proj.run("deploy") == 5
    assert current(fleet, "web01") is not None


def test_canary_failure_stops_rollout(
    fleet: Fleet, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    old = current(fleet, "web01")
    project.recipe(healthcheck='test "$FLEETDIST_HOST" != web01')
    assert deploy(project, monkeypatch, "2.0.0", "--canary", "1") == 3
    for host in WEB:
        assert current(fleet, host) == old, host


def test_max_fail_stops_cut_over(
    fleet: Fleet, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    old = current(fleet, "web01")
    project.recipe(healthcheck='case "$FLEETDIST_HOST" in web01|web02) exit 1;; esac')
    assert deploy(project, monkeypatch, "2.0.0", "--batch", "1", "--max-fail", "1") == 3
    # web01 and web02 failed (reverted), budget spent: web03..05 never cut over.
    for host in WEB:
        assert current(fleet, host) == old, host


def test_on_failure_rollback(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    old = current(fleet, "web01")
    project.recipe(healthcheck='test "$FLEETDIST_HOST" != web03')
    code = deploy(
        project,
        monkeypatch,
        "2.0.0",
        "--batch",
        "2",
        "--max-fail",
        "0",
        "--on-failure",
        "rollback",
        "--json",
    )
    assert code == 3
    result = report(capsys)
    statuses = {h["host"]: h["status"] for h in result["hosts"]}
    assert statuses["web01"] == statuses["web02"] == "rolled-back"
    for host in WEB:
        assert current(fleet, host) == old, host


def test_rollback_run_reverts_exactly_that_run(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    v1 = current(fleet, "web01")
    capsys.readouterr()
    assert deploy(project, monkeypatch, "2.0.0", "-H", "web[01-03]", "--json") == 0
    run = report(capsys)["run_id"]
    v2 = current(fleet, "web01")
    assert v2 != v1
    assert project.run("rollback", "--run", str(run)) == 0
    assert [current(fleet, h) for h in WEB] == [v1] * 5


def test_rollback_twice_returns_forward(
    fleet: Fleet, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    v1 = current(fleet, "web02")
    assert deploy(project, monkeypatch, "2.0.0") == 0
    v2 = current(fleet, "web02")
    assert project.run("rollback") == 0
    assert [current(fleet, h) for h in WEB] == [v1] * 5
    assert project.run("rollback") == 0
    assert [current(fleet, h) for h in WEB] == [v2] * 5


def _cli(project: Project, *argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "fleetdist.cli",
        argv[0],
        "--project",
        str(project.root),
        "-i",
        str(project.inventory),
        *argv[1:],
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_concurrent_rollout_refused_by_lock(fleet: Fleet, project: Project) -> None:
    project.recipe(test=["sleep 4"])
    env = {**os.environ, "HELLO_VERSION": "1.0.0"}
    first = _cli(project, "deploy", "-H", "web01", env=env)
    try:
        _wait_for(fleet, "web01", f"test -d {ROOT}/.fleetdist/lock")
        second = _cli(project, "deploy", "-H", "web01", env={**env, "HELLO_VERSION": "9.0.0"})
        _, err = second.communicate(timeout=60)
        assert second.returncode == 4
        assert "locked by" in err and "pid=" in err
    finally:
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert current(fleet, "web01", ROOT).startswith("1.0.0-")


def _wait_for(fleet: Fleet, host: str, check: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fleet.exec(host, check).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{host}: {check!r} never became true")


def test_sigkill_then_resume_converges(
    fleet: Fleet, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    old = current(fleet, "web01")
    project.recipe(test=["sleep 3"])
    env = {**os.environ, "HELLO_VERSION": "2.0.0"}
    proc = _cli(project, "deploy", env=env)
    _wait_for(fleet, "web05", f"test -d {ROOT}/.fleetdist/lock")
    time.sleep(1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    for host in WEB:  # killed mid-prepare: every host still serves a complete release
        cur = current(fleet, host)
        assert cur == old
        assert fleet.exec(host, f"test -f {ROOT}/releases/{cur}/.fleetdist-release").returncode == 0
    runs = sorted((project.root / ".fleetdist" / "runs").glob("*.jsonl"))
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    assert project.run("deploy", "--resume", runs[-1].stem) == 0
    targets = {current(fleet, h) for h in WEB}
    assert len(targets) == 1 and targets != {old}


def test_full_disk_keeps_old_release(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "p", fleet.inventory(tmp_path, services=("tiny",)))
    assert proj.run("deploy") == 0
    old = current(fleet, "tiny")
    (proj.root / "app" / "blob.bin").write_bytes(os.urandom(4 * 1024 * 1024))  # > the 3 MB tmpfs
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    capsys.readouterr()
    assert proj.run("deploy", "--json") == 1
    error = report(capsys)["hosts"][0]["error"]
    assert "tiny" in error and ("space" in error.lower() or "disk" in error.lower()), error
    assert current(fleet, "tiny") == old
    assert fleet.exec("tiny", f"cd {ROOT}/current && python3 -m hello --version").returncode == 0


def test_unknown_host_key_refused(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inventory = fleet.inventory(
        tmp_path, services=("web01",), extra={"defaults": {"known_hosts": str(empty)}}
    )
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "p", inventory)
    assert proj.run("deploy") == 5
    assert fleet.exec("web01", f"test -e {ROOT}").returncode != 0  # nothing was touched
    assert proj.run("deploy", "--accept-new-host-keys") == 0
    assert "[127.0.0.1]:" in empty.read_text()


def test_hostile_names_are_quoted(
    fleet: Fleet, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_root = "/srv/we ird $(touch /tmp/PWNED)/-rf 'q\"`touch /tmp/PWNED2`"
    project.recipe(deploy_root=hostile_root, env={"HOSTILE": "$(touch /tmp/PWNED3); `id`"})
    # A version that is no release id is refused on the controller: no host is touched.
    assert deploy(project, monkeypatch, "1.0 $(touch PWNED4) 'x\" -rf") == 2
    assert fleet.exec("web01", ["test", "-e", hostile_root]).returncode != 0
    assert deploy(project, monkeypatch, "1.0+-rf_x") == 0
    names = "-name PWNED -o -name PWNED2 -o -name PWNED3 -o -name PWNED4"
    found = fleet.exec("web01", f"find / -xdev \\( {names} \\) 2>/dev/null").stdout
    assert found == ""
    link = fleet.exec("web01", ["readlink", f"{hostile_root}/current"]).stdout.strip()
    assert link.startswith("releases/1.0+-rf_x-")


def test_fleet_bigger_than_max_startups(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "p", fleet.inventory(tmp_path, services=("crowded",)))
    assert proj.run("deploy", "--parallel", "20", "--max-connect", "10") == 0
    for node in CROWDED_HOSTS:
        assert current(fleet, node, f"/srv/{node}/hello") is not None, node


def test_fab_door_expands_patterns_in_one_rollout(
    fleet: Fleet, project: Project, tmp_path: Path
) -> None:
    (project.root / "inventories").mkdir()
    (project.root / "inventories" / "local.yaml").write_text(project.inventory.read_text())
    shutil_fabfile = Path(__file__).resolve().parents[2] / "fabfile.py"
    (project.root / "fabfile.py").write_text(shutil_fabfile.read_text())
    env = {**os.environ, "HELLO_VERSION": "1.0.0"}
    fab = Path(sys.executable).with_name("fab")
    proc = subprocess.run(
        [str(fab), "-H", "web[01-03,05]", "deploy", "--env=prod", "--json"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(h["host"] for h in report["hosts"]) == ["web01", "web02", "web03", "web05"]
    assert len({report["run_id"]}) == 1
    assert current(fleet, "web04") is None
    assert current(fleet, "web05") == report["release_id"]


def test_ssh_config_alias_and_proxyjump(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `app1` exists only in ~/.ssh/config: reached through `jumpbox` (web01 on 127.0.0.1),
    # then to 127.0.0.1:22 inside that container, so no traffic leaves loopback.
    ssh_dir = Path(os.environ["HOME"]) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(
        f"Host jumpbox\n  HostName 127.0.0.1\n  Port {fleet.ports['web01']}\n  User root\n"
        f"  IdentityFile {fleet.key}\n"
        f"Host app1\n  HostName 127.0.0.1\n  Port 22\n  User root\n  IdentityFile {fleet.key}\n"
        "  ProxyJump jumpbox\n"
    )
    key = f"{fleet.host_key.get_name()} {fleet.host_key.get_base64()}"
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{fleet.ports['web01']} {key}\n127.0.0.1 {key}\n")
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        f"defaults: {{transport: ssh, known_hosts: {known}}}\nhosts:\n  app1: {{}}\n"
    )
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    proj = Project(tmp_path / "p", inventory)
    assert proj.run("deploy") == 0
    assert current(fleet, "web01") is not None


def test_status_flags_drift_and_unreachable(
    fleet: Fleet,
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert deploy(project, monkeypatch, "1.0.0") == 0
    assert deploy(project, monkeypatch, "2.0.0", "-H", "web[01-02]") == 0
    capsys.readouterr()
    assert project.run("status", "--json") == 0
    rows = {r["host"]: r for r in json.loads(capsys.readouterr().out)["hosts"]}
    assert rows["web01"]["current"].startswith("2.0.0-") and rows["web03"]["current"].startswith(
        "1.0.0-"
    )
    assert rows["web01"]["previous"].startswith("1.0.0-")
    assert all(r["drift"] for r in rows.values())
    assert deploy(project, monkeypatch, "2.0.0") == 0
    capsys.readouterr()
    assert project.run("status", "--json") == 0
    assert not any(r["drift"] for r in json.loads(capsys.readouterr().out)["hosts"])
