"""The mux daemon's meeting point (framing, private socket, hosts), its CLI flags, fd headroom.

Reuse of real SSH connections is proven over sshd in tests/integration/test_persist.py.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdist import cli
from fleetdist.config.schema import Host
from fleetdist.transport.mux import wire


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short runtime dir (pytest's tmp_path can exceed a Unix socket's path limit)."""
    with tempfile.TemporaryDirectory(prefix="fdmux") as tmp:
        monkeypatch.setenv("XDG_RUNTIME_DIR", tmp)
        yield Path(tmp)


def test_messages_survive_the_socket_in_order() -> None:
    left, right = socket.socketpair()
    with left, right:
        wire.send(left, {"op": "run", "script": "echo 'é' $x", "stdin": None})
        wire.send(left, {"op": "exit"})
        assert wire.receive(right) == {"op": "run", "script": "echo 'é' $x", "stdin": None}
        assert wire.receive(right) == {"op": "exit"}
        left.close()
        assert wire.receive(right) is None  # a clean close between messages


def test_a_message_cut_short_or_oversized_is_refused() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(wire.HEADER.pack(100) + b'{"op":')
        left.close()
        with pytest.raises(wire.MuxError, match="mid-message"):
            wire.receive(right)
    left, right = socket.socketpair()
    with left, right:
        left.sendall(wire.HEADER.pack(wire.MAX_MESSAGE + 1))
        with pytest.raises(wire.MuxError, match="refused"):
            wire.receive(right)


def test_hosts_round_trip() -> None:
    host = Host("web01", hostname="10.0.0.1", port=2222, user="deploy", groups=("web", "eu"),
                vars={"DEPLOY_BASE": "/srv"})  # fmt: skip
    back = wire.host_from_wire(wire.host_to_wire(host))
    assert back == host and back.groups == ("web", "eu") and back.vars == host.vars


def test_socket_dir_is_created_private(runtime: Path) -> None:
    path = wire.socket_path()
    assert path.parent == runtime / "fleetdist" / "mux"
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.name.endswith(".sock") and path == wire.socket_path()  # stable


def test_socket_dir_others_can_enter_is_refused(runtime: Path) -> None:
    shared = runtime / "fleetdist" / "mux"
    shared.mkdir(parents=True)
    os.chmod(shared, 0o755)
    with pytest.raises(wire.MuxError, match="mode 0700"):
        wire.socket_path()


def test_socket_name_follows_the_ssh_agent(runtime: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    plain = wire.socket_path()
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    assert wire.socket_path() != plain  # a daemon signs with the agent it started with


def test_a_socket_path_too_long_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 90)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    with pytest.raises(wire.MuxError, match="too long"):
        wire.socket_path()


def test_disconnect_without_a_daemon(runtime: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["disconnect"]) == 0
    assert capsys.readouterr().out == "no connections were kept\n"


@pytest.mark.parametrize("value", ["-1", "inf", "nan"])
def test_persist_must_be_a_finite_duration(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--project", str(tmp_path), "--persist", value]) == 2
    assert "--persist: must be 0 or more seconds" in capsys.readouterr().err


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    # Run in a child with a soft limit of 256: a fleet holds a socket per host.
    code = (
        "import resource\n"
        "from fleetdist.transport.factory import raise_open_files_limit\n"
        "raise_open_files_limit()\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=lower, capture_output=True, text=True, check=True
    ).stdout.split()
    soft_after = int(out[0])
    assert soft_after > 256 and soft_after == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
