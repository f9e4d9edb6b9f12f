"""A real HAProxy in front of the web hosts (tests/lb), for the zero-downtime proofs.

The lb container shares the host's network namespace, so nothing here or in
it uses a docker bridge address: HAProxy listens on 127.0.0.1:`http_port`,
its servers are the web hosts' published app ports on 127.0.0.1, and its sshd
listens on 127.0.0.1:`ssh_port`, so an inventory names it as host `lb` and a
runbook step reaches the runtime API with `on: lb` and socat.  One lb per
pytest session, started only when a test asks for it; between tests only the
server states are reset (`reset`).
"""

from __future__ import annotations

import csv
import http.client
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .fleet import WEB, Fleet, _merge
from .project import Project

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "tests" / "lb" / "docker-compose.yml"
BACKEND = "app"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
APP_PORT = 8000  # where hello serves inside each web container (published on 127.0.0.1)
PIDFILE = "/srv/apps/hello/hello.pid"  # "$FLEETDIST_ROOT/hello.pid" of the test recipe
# The test recipe's after_activate hook (a rollback restarts the old release the same way).
RESTART = (
    f"python3 -m hello restart --bind 0.0.0.0 --port {APP_PORT}"
    ' --pidfile "$FLEETDIST_ROOT/hello.pid"'
)
START_TIMEOUT = 600.0  # a cold image build fetches haproxy from the Debian mirror
READY_TIMEOUT = 60.0

# Health checks every 250 ms, one failure is enough to mark a server down and
# one success to bring it back.  No retries and no redispatch: a request sent
# to a server that is restarting fails, so zero failed requests through a
# rolling restart proves the drain, not HAProxy's second chances.
HAPROXY_CFG = """\
global
    maxconn 512
    stats socket {socket} mode 600 level admin
    stats timeout 10s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 0
    option httpchk GET /
    http-check expect status 200
    default-server check inter 250ms fastinter 250ms downinter 500ms rise 1 fall 1

frontend web
    bind 127.0.0.1:{http_port}
    default_backend {backend}

backend {backend}
    balance roundrobin
{servers}
"""


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def admin_command(command: str) -> str:
    """The shell a host runs to send one runtime API command (what a runbook step runs)."""
    return f"echo '{command}' | socat stdio {ADMIN_SOCKET}"


def render_config(http_port: int, app_ports: Mapping[str, int]) -> str:
    servers = "\n".join(f"    server {h} 127.0.0.1:{p}" for h, p in sorted(app_ports.items()))
    return HAPROXY_CFG.format(
        socket=ADMIN_SOCKET, http_port=http_port, backend=BACKEND, servers=servers
    )


@dataclass(frozen=True)
class LoadBalancer:
    """The running lb: its compose project and container, its two ports on
    127.0.0.1, and the HAProxy servers (one per web host, named like it)."""

    project: str
    container: str
    http_port: int
    ssh_port: int
    backends: tuple[str, ...]
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def admin(self, command: str) -> str:
        """One runtime API command through `docker exec` (the tests' side door)."""
        proc = subprocess.run(
            ["docker", "exec", "-i", self.container, "socat", "stdio", ADMIN_SOCKET],
            input=command + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=self.env,
        )
        return proc.stdout

    def states(self) -> dict[str, str]:
        """Server -> the first word of its HAProxy status: UP, DOWN, MAINT, DRAIN."""
        rows = csv.reader(self.admin("show stat").lstrip("# ").splitlines())
        header = next(rows)
        px, sv, status = (header.index(k) for k in ("pxname", "svname", "status"))
        return {
            r[sv]: r[status].split()[0]
            for r in rows
            if r and r[px] == BACKEND and r[sv] not in ("FRONTEND", "BACKEND")
        }

    def wait_states(self, want: Mapping[str, str], timeout: float = 30.0) -> None:
        """Wait until every server in `want` has that status (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.states()
            if all(now.get(h) == s for h, s in want.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy states {now}, wanted {dict(want)}")
            time.sleep(0.1)

    def reset(self) -> None:
        """Every server back to `ready` (what a test left drained or in maintenance)."""
        said = self.admin("; ".join(f"set server {BACKEND}/{h} state ready" for h in self.backends))
        assert not said.strip(), f"haproxy: {said}"

    def inventory(
        self,
        fleet: Fleet,
        tmp_path: Path,
        services: Iterable[str] = WEB,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """`fleet.inventory` plus host `lb` and each web host's `app_port` var."""
        services = list(services)
        doc: dict[str, Any] = {
            "hosts": {
                "lb": {"hostname": "127.0.0.1", "port": self.ssh_port},
                **{h: {"vars": {"app_port": fleet.app_ports[h]}} for h in services},
            }
        }
        return fleet.inventory(tmp_path, services, extra=_merge(doc, extra or {}))


def _compose(project: str, env: Mapping[str, str], *args: str, timeout: float) -> str:
    argv = ["docker-compose", "-f", str(COMPOSE_FILE), "-p", project, *args]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=dict(env)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"docker-compose {' '.join(args)}: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def start(
    fleet: Fleet, project: str, conf_dir: Path, handshake: Callable[[int], bool]
) -> LoadBalancer:
    """Bring the lb up for `fleet` (the web hosts' app ports must be known).

    `handshake(port)` is the fleet's SSH readiness check; the lb shares the
    fleet's host key, so its known_hosts line is appended to the fleet's.
    """
    http_port, ssh_port = free_port(), free_port()
    backends = {h: fleet.app_ports[h] for h in WEB}
    (conf_dir / "haproxy.cfg").write_text(render_config(http_port, backends))
    env = {
        **fleet.env,
        "FLEETTEST_LB_SSH_PORT": str(ssh_port),
        "FLEETTEST_LB_CONF": str(conf_dir),
    }
    try:
        _compose(project, env, "up", "--build", "-d", timeout=START_TIMEOUT)
        container = _compose(project, env, "ps", "-q", "lb", timeout=60).strip()
        lb = LoadBalancer(project, container, http_port, ssh_port, tuple(backends), env)
        _wait_ready(lb, handshake)
    except BaseException:
        subprocess.run(  # nothing is left running when the session cannot use it
            ["docker-compose", "-f", str(COMPOSE_FILE), "-p", project, "down", "-v", "-t", "1"],
            capture_output=True,
            timeout=120,
            check=False,
            env=env,
        )
        raise
    key = f"{fleet.host_key.get_name()} {fleet.host_key.get_base64()}"
    with fleet.known_hosts.open("a") as f:
        f.write(f"[127.0.0.1]:{ssh_port} {key}\n")
    return lb


def _wait_ready(lb: LoadBalancer, handshake: Callable[[int], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not handshake(lb.ssh_port) or not _admin_ready(lb):
        if time.monotonic() > deadline:
            logs = _compose(lb.project, lb.env, "logs", "--tail=30", timeout=60)
            raise RuntimeError(f"lb not ready after {READY_TIMEOUT:g}s; logs:\n{logs}")
        time.sleep(0.5)


def _admin_ready(lb: LoadBalancer) -> bool:
    try:
        return "Name: HAProxy" in lb.admin("show info")
    except subprocess.SubprocessError:
        return False


def stop(lb: LoadBalancer) -> None:
    _compose(lb.project, lb.env, "down", "-v", "-t", "1", timeout=120)


def stop_apps(fleet: Fleet, hosts: Iterable[str] = WEB) -> None:
    """Stop the hello server on each host (by its pid file; bounded), in parallel."""
    script = (
        f'p=$(cat {PIDFILE} 2>/dev/null) || exit 0; kill "$p" 2>/dev/null || exit 0; '
        'i=0; while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
        f'kill -9 "$p" 2>/dev/null; rm -f {PIDFILE}; true'
    )
    procs = [
        subprocess.Popen(
            ["docker", "exec", fleet.containers[h], "sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=fleet.env,
        )
        for h in hosts
    ]
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_reply(fleet: Fleet, host: str) -> str:
    """GET / straight from `host`'s server (127.0.0.1:<its published port>, no proxy)."""
    conn = http.client.HTTPConnection("127.0.0.1", fleet.app_ports[host], timeout=5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def serving_project(
    fleet: Fleet, lb: LoadBalancer, tmp_path: Path, hosts: tuple[str, ...]
) -> Project:
    """A project whose deploys (re)start the hello server on port 8000."""
    project = Project(tmp_path / "project", lb.inventory(fleet, tmp_path, hosts))
    project.recipe(hooks={"after_activate": [RESTART]})
    return project


def bump(project: Project, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's next version: new code (its __version__) and a new release id."""
    init = project.root / "app" / "hello" / "__init__.py"
    init.write_text(
        re.sub(r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text())
    )
    monkeypatch.setenv("HELLO_VERSION", version)
