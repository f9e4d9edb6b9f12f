"""The local transport: the Transport protocol over subprocess, rooted in a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetdist.config.schema import Host
from fleetdist.errors import TransportError
from fleetdist.transport.base import Result, Stdin
from fleetdist.transport.factory import transport_factory
from fleetdist.transport.local import LocalTransport

from .conftest import Project


def local_host(root: Path) -> Host:
    return Host(name="web01", transport="local", local_root=str(root))


def test_run_in_root_and_report_exit_code(tmp_path: Path) -> None:
    t = LocalTransport(local_host(tmp_path / "h"))
    assert (tmp_path / "h").is_dir(), "the root is created on connect"
    result = t.run("pwd; echo oops >&2; exit 3")
    assert result == Result(3, f"{tmp_path / 'h'}\n", "oops\n")
    assert not result.ok
    assert result.tail() == "oops"
    assert t.run("true").ok
    t.close()


def test_result_tail_joins_last_lines() -> None:
    r = Result(1, "out1\nout2\n", "")
    assert r.tail() == "out1 | out2"
    assert Result(1, "x", "\n".join(f"e{i}" for i in range(9))).tail(2) == "e7 | e8"


def test_timeout_is_a_transport_error(tmp_path: Path) -> None:
    t = LocalTransport(local_host(tmp_path))
    with pytest.raises(TransportError, match="host web01: command timed out"):
        t.run("sleep 5", timeout=0.2)


def test_stdin_streams_a_file_and_is_empty_otherwise(tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"\x00payload" * 100_000)
    t = LocalTransport(local_host(tmp_path / "h"))
    assert t.run("wc -c", stdin=Stdin(src)).stdout.strip() == str(len(src.read_bytes()))
    assert t.run("wc -c").stdout.strip() == "0"


def test_missing_local_root_is_refused() -> None:
    with pytest.raises(TransportError, match="needs local_root"):
        LocalTransport(Host(name="web01", transport="local"))


def test_root_that_cannot_exist_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(TransportError, match="host web01: unreachable"):
        LocalTransport(local_host(tmp_path / "file" / "sub"))


def test_factory_picks_local_without_importing_ssh(tmp_path: Path) -> None:
    make = transport_factory()
    assert isinstance(make(local_host(tmp_path)), LocalTransport)


def test_unreachable_hosts_exit_5(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = project.fleet.parent / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("FLEET_ROOT", str(blocker))
    result = project.run("deploy", "--json")
    assert result.code == 5, result.err + result.out
    assert {h["status"] for h in result.json()["hosts"]} == {"unreachable"}
    status = project.run("status", "--json")
    assert status.code == 5
    assert not any(r["reachable"] for r in status.json()["hosts"])
