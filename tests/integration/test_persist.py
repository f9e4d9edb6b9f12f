"""`--persist` over real sshd: a connection outlives its run, is re-checked before reuse,
and `disconnect` closes it.  Each test reads sshd's own per-connection processes on the
host (`sshd: root@notty`), so reuse is proven by the host, not by fleetdist's report.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleetdist import cli
from fleetdist.transport.mux import wire
from fleetdist.transport.mux.client import MuxFactory

from .fleet import Fleet
from .project import Project
from .test_rollout import current
from .test_ssh_transport import host_for

pytestmark = pytest.mark.integration

SESSIONS = (
    'for f in /proc/[0-9]*; do case "$(tr "\\0" " " < "$f/cmdline" 2>/dev/null)" in '
    '"sshd: root@"*) echo "${f#/proc/}";; esac; done'
)


def sessions(fleet: Fleet, host: str) -> set[str]:
    """PIDs of the sshd processes serving a logged-in connection on `host`."""
    return set(fleet.exec(host, SESSIONS).stdout.split())


def settled_sessions(fleet: Fleet, host: str, want: int, wait: float = 10.0) -> set[str]:
    """`sessions`, polled (bounded) until there are `want`: closing a connection is async."""
    deadline = time.monotonic() + wait
    while True:
        found = sessions(fleet, host)
        if len(found) == want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture
def one_host(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    return Project(tmp_path / "project", fleet.inventory(tmp_path, services=("web01",)))


def test_next_run_reuses_the_connection_until_disconnect(
    fleet: Fleet,
    one_host: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert one_host.run("deploy") == 0
    first = settled_sessions(fleet, "web01", 1)
    assert len(first) == 1
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    assert one_host.run("deploy") == 0
    assert one_host.run("rollback") == 0
    assert current(fleet, "web01", "/srv/apps/hello").startswith("1.0.0-")
    assert sessions(fleet, "web01") == first  # two more runs, no new handshake
    assert cli.main(["disconnect"]) == 0
    assert settled_sessions(fleet, "web01", 0) == set()
    assert "closed the kept connections" in capsys.readouterr().out


def test_persist_zero_closes_at_exit(fleet: Fleet, one_host: Project) -> None:
    assert one_host.run("deploy", "--persist", "0") == 0
    assert current(fleet, "web01", "/srv/apps/hello") is not None
    assert settled_sessions(fleet, "web01", 0) == set()


def test_a_pooled_connection_that_died_is_reopened(
    fleet: Fleet, one_host: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert one_host.run("deploy") == 0
    (old,) = settled_sessions(fleet, "web01", 1)
    fleet.exec("web01", ["kill", old])
    monkeypatch.setenv("HELLO_VERSION", "2.0.0")
    assert one_host.run("deploy") == 0
    assert current(fleet, "web01", "/srv/apps/hello").startswith("2.0.0-")
    (new,) = settled_sessions(fleet, "web01", 1)
    assert new != old


def test_a_key_removed_from_known_hosts_is_not_trusted_by_the_pool(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(fleet.known_hosts.read_text())
    inventory = fleet.inventory(
        tmp_path, services=("web01",), extra={"defaults": {"known_hosts": str(known)}}
    )
    proj = Project(tmp_path / "p", inventory)
    assert proj.run("status") == 0
    assert len(settled_sessions(fleet, "web01", 1)) == 1  # kept in the pool
    port = fleet.ports["web01"]
    lines = known.read_text().splitlines(keepends=True)
    known.write_text("".join(line for line in lines if f":{port} " not in line))
    capsys.readouterr()
    assert proj.run("status", "--json") == 5
    (row,) = json.loads(capsys.readouterr().out)["hosts"]
    assert f"unknown host key for [127.0.0.1]:{port}" in row["error"]


def test_without_a_private_socket_dir_it_connects_directly(
    fleet: Fleet,
    one_host: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runtime = tmp_path / "run"
    (runtime / "fleetdist" / "mux").mkdir(parents=True)
    os.chmod(runtime / "fleetdist" / "mux", 0o755)  # others could enter: refused
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert one_host.run("deploy") == 0
    assert "connecting without --persist" in capsys.readouterr().err
    assert not list((runtime / "fleetdist" / "mux").iterdir())
    assert settled_sessions(fleet, "web01", 0) == set()


KILLED_RUN = """
import sys
from fleetdist.config.schema import Host
from fleetdist.transport.mux.client import MuxFactory
host = Host("web01", hostname="127.0.0.1", port=int(sys.argv[1]), user="root",
            identity_file=sys.argv[2], known_hosts=sys.argv[3])
transport = MuxFactory(accept_new_host_keys=False, max_connect=1, persist=60)(host)
print("connected", flush=True)
transport.run("touch /tmp/started; sleep 2; echo out; touch /tmp/finished")
"""


def test_a_killed_run_does_not_leave_its_command_to_the_daemon(fleet: Fleet) -> None:
    # Killed mid-command, the run's channel closes as a dropped connection would:
    # the script dies at its next write instead of the daemon seeing it through.
    fleet.exec("web01", "rm -f /tmp/started /tmp/finished")
    argv = [sys.executable, "-c", KILLED_RUN, str(fleet.ports["web01"]), str(fleet.key),
            str(fleet.known_hosts)]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "connected\n"
            deadline = time.monotonic() + 20
            while fleet.exec("web01", "test -e /tmp/started").returncode != 0:
                assert time.monotonic() < deadline, "the command never started"
                time.sleep(0.1)
        finally:
            proc.kill()
    time.sleep(4)  # the script's sleep is over: it wrote, and would have finished by now
    assert fleet.exec("web01", "test -e /tmp/finished").returncode != 0


def test_a_daemon_that_exits_as_a_run_connects_is_replaced(fleet: Fleet) -> None:
    # A stand-in for a daemon at the end of its life: it takes the factory's probe and
    # the host's `open`, hangs up, and is gone.  The run must start a new daemon and go on.
    path = wire.socket_path()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(2)
    hung_up = []

    def exiting_daemon() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(4)
            conn.close()
            hung_up.append(True)
        listener.close()
        path.unlink()

    thread = threading.Thread(target=exiting_daemon, daemon=True)
    thread.start()
    factory = MuxFactory(accept_new_host_keys=False, max_connect=1, persist=60)
    transport = factory(host_for(fleet, "web01"))
    try:
        assert transport.run("echo alive").stdout == "alive\n"
    finally:
        transport.close()
    thread.join(5)
    assert hung_up == [True, True]
