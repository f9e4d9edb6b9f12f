"""The real-sshd test fleet (tests/docker-compose.yml), for integration tests.

Session fixtures bring the fleet up once with pytest-docker and yield `fleet`
(a `Fleet`): ports, client key, a known_hosts written *before* the first
connection (no trust on first use), and helpers to write inventories and to
look at the hosts through `docker exec`.  Every test that uses `fleet` starts
with an empty /srv on every host.  `lb` adds a real HAProxy in front of the
web hosts (lb.py), started once per session by the first test that asks.

Docker missing or unusable: the session is skipped locally, but fails when the
CI environment variable is set, so CI never goes green by skipping.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest

from fleetdist import api

from . import lb as lbfleet
from .fleet import SERVICES, Fleet

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "tests" / "docker-compose.yml"
KEYS_ENV = "FLEETTEST_SSHD_KEYS"  # read by docker-compose.yml; not FLEETDIST_*, which tests hide
READY_TIMEOUT = 60.0


def _unusable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"integration fleet unavailable: {reason}", pytrace=False)
    pytest.skip(f"integration fleet unavailable: {reason}")


def _script(name: str, timeout: float) -> None:
    """Run scripts/<name>; turn any failure into a skip (or a CI failure)."""
    try:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / name)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unusable(f"scripts/{name}: {exc}")
        return
    if proc.returncode != 0:
        _unusable(f"scripts/{name} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def fleet_docker_ready() -> None:
    """Docker is up and the local base image exists (both scripts are idempotent)."""
    _script("docker-up.sh", timeout=300)
    _script("base-image.sh", timeout=900)  # a cold debootstrap takes about a minute


@dataclass(frozen=True)
class FleetKeys:
    sshd_dir: Path  # mounted at /etc/fleet: host key + authorized_keys
    client_key: Path
    host_key: paramiko.PKey


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def fleet_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetKeys]:
    """A client key and one host key shared by all sshd containers."""
    base = tmp_path_factory.mktemp("fleet-keys")
    sshd_dir, client_dir = base / "sshd", base / "client"
    sshd_dir.mkdir()
    client_dir.mkdir(mode=0o700)
    _keygen(sshd_dir / "ssh_host_ed25519_key", "fleetdist-test-host")
    _keygen(client_dir / "id_ed25519", "fleetdist-test-client")
    (sshd_dir / "authorized_keys").write_text((client_dir / "id_ed25519.pub").read_text())
    host_key = paramiko.Ed25519Key.from_private_key_file(str(sshd_dir / "ssh_host_ed25519_key"))
    previous = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = str(sshd_dir)
    yield FleetKeys(sshd_dir, client_dir / "id_ed25519", host_key)
    if previous is None:
        os.environ.pop(KEYS_ENV, None)
    else:
        os.environ[KEYS_ENV] = previous


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"fleetdistit{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup(fleet_docker_ready: None, fleet_keys: FleetKeys) -> list[str]:
    # Depends on the keys so the compose file's volume variable is set for up and down.
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v -t 1"]


class _Handshake:
    """A wait_until_responsive check: a real SSH handshake plus public-key auth."""

    def __init__(self, port: int, keys: FleetKeys) -> None:
        self.port, self.keys = port, keys
        self.client_key = paramiko.Ed25519Key.from_private_key_file(str(keys.client_key))
        self.last_error = "no attempt yet"

    def __call__(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                transport = paramiko.Transport(sock)
                try:
                    transport.banner_timeout = 2
                    transport.start_client(timeout=2)
                    if transport.get_remote_server_key() != self.keys.host_key:
                        raise AssertionError(f"port {self.port}: unexpected host key")
                    transport.auth_publickey("root", self.client_key)
                    return transport.is_authenticated()
                finally:
                    transport.close()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False


def _compose(project: str, *args: str) -> str:
    argv = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", project, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr


def _containers(project: str) -> dict[str, tuple[str, int, int]]:
    """Service -> (container id, host port of 22, host port of 8000), in two docker calls.

    (`docker-compose port` and `ps` would cost a Python start-up each, seconds
    in total.)
    """
    label = f"label=com.docker.compose.project={project}"
    ids = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", label],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    if not ids:
        return {}
    inspect = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, timeout=30, check=True
    )
    found = {}
    for info in json.loads(inspect.stdout):
        service = info["Config"]["Labels"]["com.docker.compose.service"]
        ssh, app = (info["NetworkSettings"]["Ports"][p][0] for p in ("22/tcp", "8000/tcp"))
        for binding in (ssh, app):
            assert binding["HostIp"] == "127.0.0.1", f"{service}: published beyond loopback"
        found[service] = (info["Id"], int(ssh["HostPort"]), int(app["HostPort"]))
    return found


@pytest.fixture(scope="session")
def fleet(
    docker_services: Any,
    docker_compose_project_name: str,
    fleet_keys: FleetKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> Fleet:
    """Wait for every sshd (real handshake), then describe the fleet."""
    started = time.monotonic()
    running = _containers(docker_compose_project_name)
    missing = sorted(set(SERVICES) - set(running))
    if missing:
        pytest.fail(f"fleet services not running: {', '.join(missing)}", pytrace=False)
    ports = {service: running[service][1] for service in SERVICES}
    for service, port in ports.items():
        check = _Handshake(port, fleet_keys)
        try:
            docker_services.wait_until_responsive(timeout=READY_TIMEOUT, pause=0.5, check=check)
        except Exception as exc:  # pytest-docker's timeout is a bare Exception
            logs = _compose(docker_compose_project_name, "logs", "--tail=20", service)
            pytest.fail(
                f"sshd {service} on 127.0.0.1:{port} not ready after {READY_TIMEOUT:g}s "
                f"({exc}; last error: {check.last_error}); logs:\n{logs}",
                pytrace=False,
            )
    known_hosts = tmp_path_factory.mktemp("fleet-known-hosts") / "known_hosts"
    key_text = f"{fleet_keys.host_key.get_name()} {fleet_keys.host_key.get_base64()}"
    known_hosts.write_text("".join(f"[127.0.0.1]:{p} {key_text}\n" for p in ports.values()))
    containers = {service: running[service][0] for service in SERVICES}
    print(f"\nfleet ready in {time.monotonic() - started:.1f}s after compose up")
    return Fleet(
        ports=ports,
        key=fleet_keys.client_key,
        known_hosts=known_hosts,
        host_key=fleet_keys.host_key,
        containers=containers,
        env=dict(os.environ),
        app_ports={service: running[service][2] for service in SERVICES},
    )


@pytest.fixture(scope="session")
def lb_session(
    fleet: Fleet,
    fleet_keys: FleetKeys,
    docker_compose_project_name: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[lbfleet.LoadBalancer]:
    """HAProxy in front of web01..web05 (see lb.py), once per session, on first use."""
    conf = tmp_path_factory.mktemp("fleet-lb")
    conf.chmod(0o755)  # read by the container's root through a bind mount
    try:
        lb = lbfleet.start(
            fleet, f"{docker_compose_project_name}lb", conf, lambda p: _Handshake(p, fleet_keys)()
        )
    except (RuntimeError, subprocess.SubprocessError) as exc:
        _unusable(f"load balancer: {exc}")
        raise
    yield lb
    lbfleet.stop(lb)


@pytest.fixture
def lb(lb_session: lbfleet.LoadBalancer, fleet: Fleet) -> Iterator[lbfleet.LoadBalancer]:
    """The session's lb with every server `ready`; the hello servers stop afterwards."""
    lb_session.reset()
    yield lb_session
    lbfleet.stop_apps(fleet)


@pytest.fixture(autouse=True)
def _fleet_clean(request: pytest.FixtureRequest) -> None:
    """Each test that uses the fleet starts with an empty /srv everywhere."""
    if "fleet" in request.fixturenames:
        request.getfixturevalue("fleet").reset()


@pytest.fixture(autouse=True)
def _hide_user_ssh(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Keep the developer's ~/.ssh (config, keys, known_hosts) and FLEETDIST_* out.

    Each test also gets its own mux daemon (its socket lives under this HOME),
    closed when the test ends, so no test reuses another's connections.
    """
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    for name in [n for n in os.environ if n.startswith("FLEETDIST_")]:
        monkeypatch.delenv(name)
    yield
    api.disconnect()
