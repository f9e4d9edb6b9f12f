"""The SSH transport against real sshd containers (see conftest.py)."""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from fleetdist.config.schema import Host
from fleetdist.errors import HostKeyError, TransportError
from fleetdist.transport.base import Stdin
from fleetdist.transport.ssh import ssh_transport_factory

from .fleet import Fleet


def host_for(fleet: Fleet, name: str, **overrides: object) -> Host:
    host = Host(
        name=name,
        hostname="127.0.0.1",
        port=fleet.ports[Fleet.service_of(name)],
        user="root",
        identity_file=str(fleet.key),
        known_hosts=str(fleet.known_hosts),
        connect_timeout=10,
        command_timeout=60,
    )
    return replace(host, **overrides)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def key_line(fleet: Fleet, port: int, key: paramiko.PKey | None = None) -> str:
    key = key or fleet.host_key
    return f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n"


UPLOAD_BYTES = 5 * 1024 * 1024  # more than sshd's 2 MiB channel window


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    """5 MiB of random bytes to stream as a command's stdin."""
    path = tmp_path / "upload.bin"
    path.write_bytes(os.urandom(UPLOAD_BYTES))
    return path


@pytest.mark.integration
def test_run_returns_output_and_reuses_one_connection(fleet: Fleet) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web01"))
    try:
        first = transport.run('x=\'a b\'; echo "$x" "$0"; echo oops >&2')
        second = transport.run('echo "$SSH_CONNECTION"')
        third = transport.run('echo "$SSH_CONNECTION"')
    finally:
        transport.close()
    assert (first.exit_code, first.stdout, first.stderr) == (0, "a b sh\n", "oops\n")
    assert second.stdout == third.stdout  # same client port: one connection


@pytest.mark.integration
def test_nonzero_exit_is_a_result(fleet: Fleet) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web02"))
    try:
        result = transport.run("echo partial; echo broken >&2; exit 3")
    finally:
        transport.close()
    assert (result.exit_code, result.ok) == (3, False)
    assert result.tail() == "broken"


@pytest.mark.integration
def test_stdin_is_empty_so_nothing_waits_for_input(fleet: Fleet) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web02"))
    try:
        result = transport.run("cat; echo done", timeout=10)
    finally:
        transport.close()
    assert result.stdout == "done\n"


@pytest.mark.integration
def test_stdin_streams_a_file_on_the_same_channel(fleet: Fleet, upload: Path) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web03"))
    try:
        script = "mkdir -p /srv/in && cat > /srv/in/a.bin && echo ok"
        result = transport.run(script, stdin=Stdin(upload))
    finally:
        transport.close()
    assert result.stdout == "ok\n", result.stderr
    remote = fleet.exec("web03", "sha256sum /srv/in/a.bin")
    assert remote.stdout.split()[0] == hashlib.sha256(upload.read_bytes()).hexdigest()


def sent_bytes(transport: object) -> int:
    """Bytes Paramiko has written on this connection (its rekeying counter)."""
    packetizer = transport._conn.client.get_transport().packetizer  # type: ignore[attr-defined]
    return int(packetizer._Packetizer__sent_bytes)


@pytest.mark.integration
def test_stdin_after_sends_only_once_the_script_asks(fleet: Fleet, upload: Path) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web03"))
    try:
        before = sent_bytes(transport)
        skipped = transport.run("echo have it", stdin=Stdin(upload, after="@@send"))
        between = sent_bytes(transport)
        asked = transport.run(
            'echo "send x"; echo @@send; wc -c | tr -d " "', stdin=Stdin(upload, after="@@send")
        )
        after = sent_bytes(transport)
    finally:
        transport.close()
    assert (skipped.exit_code, skipped.stdout) == (0, "have it\n")
    assert between - before < 64 * 1024  # the script, not the 5 MB
    assert asked.stdout == f"send x\n@@send\n{UPLOAD_BYTES}\n", asked.stderr
    assert after - between > UPLOAD_BYTES


@pytest.mark.integration
def test_script_that_stops_reading_early_still_reports(fleet: Fleet, upload: Path) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "tiny"))  # its /srv holds 3 MB
    try:
        early = transport.run("echo refused >&2; exit 9", stdin=Stdin(upload), timeout=30)
        script = "cat > /srv/big.bin || { rm -f /srv/big.bin; exit 4; }"
        full = transport.run(script, stdin=Stdin(upload))
        assert transport.run("echo still usable").stdout == "still usable\n"
    finally:
        transport.close()
    assert (early.exit_code, early.tail()) == (9, "refused")
    assert full.exit_code == 4 and "No space left on device" in full.stderr


@pytest.mark.integration
def test_command_timeout_holds_while_the_host_does_not_read_the_upload(
    fleet: Fleet, upload: Path
) -> None:
    """The upload outgrows sshd's window and waits for window that never comes."""
    transport = ssh_transport_factory()(host_for(fleet, "web04"))
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match=r"^host web04: command timed out after 2s"):
            transport.run("sleep 30", stdin=Stdin(upload), timeout=2)
    finally:
        transport.close()
    assert time.monotonic() - started < 10


@pytest.mark.integration
def test_command_timeout_is_a_transport_error(fleet: Fleet) -> None:
    transport = ssh_transport_factory()(host_for(fleet, "web04"))
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match=r"^host web04: command timed out after 1s"):
            transport.run("sleep 30", timeout=1)
    finally:
        transport.close()
    assert time.monotonic() - started < 10


@pytest.mark.integration
def test_unknown_host_key_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(key_line(fleet, fleet.ports["web02"]))  # web01 is not there
    host = host_for(fleet, "web01", known_hosts=str(known_hosts))
    port = fleet.ports["web01"]
    message = rf"^host web01: unknown host key for \[127\.0\.0\.1\]:{port} \(not in known_hosts"
    with pytest.raises(HostKeyError, match=message):
        ssh_transport_factory()(host)


@pytest.mark.integration
def test_accept_new_records_the_key(fleet: Fleet, tmp_path: Path) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"  # neither file nor directory exists
    host = host_for(fleet, "web05", known_hosts=str(known_hosts))
    ssh_transport_factory(accept_new_host_keys=True)(host).close()
    assert known_hosts.read_text() == key_line(fleet, fleet.ports["web05"])
    ssh_transport_factory()(host).close()  # strict now trusts the recorded key


@pytest.mark.integration
@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_key_is_refused(fleet: Fleet, tmp_path: Path, accept_new: bool) -> None:
    known_hosts = tmp_path / "known_hosts"
    other_key = paramiko.Ed25519Key.from_private_key_file(str(fleet.key))  # any other key
    known_hosts.write_text(key_line(fleet, fleet.ports["web01"], other_key))
    before = known_hosts.read_text()
    host = host_for(fleet, "web01", known_hosts=str(known_hosts))
    with pytest.raises(HostKeyError, match=r"^host web01: host key for .* has CHANGED"):
        ssh_transport_factory(accept_new_host_keys=accept_new)(host)
    assert known_hosts.read_text() == before


@pytest.mark.integration
def test_unreachable_port_fails_fast(fleet: Fleet) -> None:
    host = host_for(fleet, "web01", port=free_port(), connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"^host web01: unreachable: "):
        ssh_transport_factory()(host)
    assert time.monotonic() - started < 3


@pytest.mark.integration
def test_jump_host_is_checked_too(fleet: Fleet, tmp_path: Path) -> None:
    # web02 reached through web01 by its compose service name on port 22.
    jump = f"root@127.0.0.1:{fleet.ports['web01']}"
    host = host_for(fleet, "web02", hostname="web02", port=22, jump_host=jump)
    with pytest.raises(HostKeyError, match=r"unknown host key for web02 "):
        ssh_transport_factory()(host)
    known_hosts = tmp_path / "known_hosts"
    key = fleet.host_key
    known_hosts.write_text(f"web02 {key.get_name()} {key.get_base64()}\n")  # no jump entry
    with pytest.raises(HostKeyError, match=r"unknown host key for \[127\.0\.0\.1\]:"):
        ssh_transport_factory()(replace(host, known_hosts=str(known_hosts)))
    target_only = known_hosts.read_text()
    known_hosts.write_text(target_only + fleet.known_hosts.read_text())
    transport = ssh_transport_factory()(replace(host, known_hosts=str(known_hosts)))
    try:
        assert transport.run("hostname").stdout.strip() == fleet.containers["web02"][:12]
        assert transport.usable()
        known_hosts.write_text(target_only)  # the jump host's key is no longer trusted
        assert not transport.usable(), "a pooled connection must re-check every hop's key"
    finally:
        transport.close()


@pytest.mark.integration
def test_twenty_hosts_through_max_startups_3(fleet: Fleet) -> None:
    factory = ssh_transport_factory(max_connect=10)
    hosts = [host_for(fleet, f"node{i:02d}") for i in range(1, 21)]

    def deploy(host: Host) -> str:
        transport = factory(host)
        try:
            base = f"/srv/{host.name}"
            return transport.run(f"mkdir -p {base} && echo {host.name} > {base}/who").stdout
        finally:
            transport.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(deploy, hosts))
    assert results == [""] * 20
    listing = fleet.exec("crowded", "cat /srv/node*/who")
    assert listing.stdout.split() == [h.name for h in hosts]


@pytest.mark.integration
def test_commands_work_with_descriptors_past_1024(fleet: Fleet) -> None:
    # A controller talking to hundreds of hosts holds a socket per host: the waits on a
    # channel must not be select(), which fails on any descriptor past 1023.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1300
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        transport = ssh_transport_factory()(host_for(fleet, "web01"))
        try:
            assert transport.run("echo over the limit").stdout == "over the limit\n"
        finally:
            transport.close()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
