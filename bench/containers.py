"""The Docker sshd fleet: image, keys, bring-up, readiness, known_hosts and teardown.

Containers publish on 127.0.0.1 only and carry a per-run label, so teardown can find
every one of them (by id, then by label as a net) even after a partial bring-up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from shell import REPO, log, sh

IMAGE = "fleetdist/sshd-test:bookworm"
BASE_IMAGE = "fleetdist/base:bookworm"
LABEL = "fleetdist-bench"


@dataclass
class Node:
    name: str  # inventory host name
    cid: str = ""  # container id
    port: int = 0
    cpu_path: Path | None = None  # cgroup file with the container's CPU usage
    proxy_pids: list[int] = field(default_factory=list)


class Fleet:
    """N sshd containers on 127.0.0.1, created and removed by this process only."""

    def __init__(self, work: Path, size: int, tag: str, tmpfs_mb: int) -> None:
        self.size, self.tag, self.tmpfs_mb = size, tag, tmpfs_mb
        self.nodes = [Node(f"h{i:03d}") for i in range(1, size + 1)]
        self.keys = work / "keys"
        self.client_key = work / "client" / "id_ed25519"
        self.known_hosts = work / "known_hosts"

    # -- setup

    def ensure_image(self) -> None:
        """Build the integration sshd image (and its base) locally if missing: no registry."""
        if sh(["docker", "image", "inspect", IMAGE], 30, check=False).returncode == 0:
            return
        if sh(["docker", "image", "inspect", BASE_IMAGE], 30, check=False).returncode != 0:
            log(f"building {BASE_IMAGE} (scripts/base-image.sh)")
            sh(["bash", str(REPO / "scripts" / "base-image.sh")], 900)
        log(f"building {IMAGE} from tests/sshd")
        sh(["docker", "build", "-t", IMAGE, str(REPO / "tests" / "sshd")], 600)

    def make_keys(self) -> None:
        """Fresh host and client keys, so nothing is trusted on first use."""
        self.keys.mkdir()
        self.client_key.parent.mkdir(mode=0o700)
        for path, comment in (
            (self.keys / "ssh_host_ed25519_key", "fleetbench-host"),
            (self.client_key, "fleetbench-client"),
        ):
            sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], 30)
        pub = self.client_key.with_suffix(".pub").read_text()
        (self.keys / "authorized_keys").write_text(pub)
        os.chmod(self.keys, 0o755)  # root in the container reads the 0600 files anyway

    def up(self, deadline_s: float) -> None:
        """Start every container, wait for real SSH auth on each, then write known_hosts."""
        t0 = time.monotonic()

        def run(node: Node) -> None:
            argv = [
                "docker", "run", "-d", "--rm",
                "--name", f"fleetbench-{self.tag}-{node.name}",
                "--label", f"{LABEL}={self.tag}",
                "-p", "127.0.0.1::22",
                "-v", f"{self.keys}:/etc/fleet:ro",
                "--tmpfs", f"/srv:size={self.tmpfs_mb}m,mode=0755",
                IMAGE,
            ]  # fmt: skip
            node.cid = sh(argv, 120).stdout.strip()

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(run, self.nodes))
        log(f"{self.size} containers started in {time.monotonic() - t0:.1f}s")
        self._inspect()
        self._find_cpu_sources()
        self._wait_ready(deadline_s)
        key = (self.keys / "ssh_host_ed25519_key.pub").read_text().split()
        self.known_hosts.write_text(
            "".join(f"[127.0.0.1]:{n.port} {key[0]} {key[1]}\n" for n in self.nodes)
        )
        log(f"fleet of {self.size} ready in {time.monotonic() - t0:.1f}s")

    def _inspect(self) -> None:
        """Learn each ephemeral port, refusing any binding that is not loopback."""
        info = json.loads(sh(["docker", "inspect", *[n.cid for n in self.nodes]], 120).stdout)
        by_id = {i["Id"]: i for i in info}
        for node in self.nodes:
            binding = by_id[node.cid]["NetworkSettings"]["Ports"]["22/tcp"][0]
            if binding["HostIp"] != "127.0.0.1":
                raise RuntimeError(f"{node.name}: port published on {binding['HostIp']}")
            node.port = int(binding["HostPort"])

    def _find_cpu_sources(self) -> None:
        """cgroup v1 (cpuacct) or v2 (cpu.stat) file per container; docker-proxy pids per port."""
        for node in self.nodes:
            for cand in (
                Path(f"/sys/fs/cgroup/cpuacct/docker/{node.cid}/cpuacct.usage"),
                Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{node.cid}/cpuacct.usage"),
                Path(f"/sys/fs/cgroup/system.slice/docker-{node.cid}.scope/cpu.stat"),
                Path(f"/sys/fs/cgroup/docker/{node.cid}/cpu.stat"),
            ):
                if cand.exists():
                    node.cpu_path = cand
                    break
        ports = {str(n.port): n for n in self.nodes}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not args or not args[0].endswith(b"docker-proxy"):
                continue
            words = [a.decode(errors="replace") for a in args]
            if "-host-port" in words:
                port = words[words.index("-host-port") + 1]
                if port in ports:
                    ports[port].proxy_pids.append(int(entry.name))
        missing = sum(1 for n in self.nodes if n.cpu_path is None)
        if missing:
            log(f"warning: no cgroup CPU file for {missing} containers; host CPU is partial")

    def _wait_ready(self, deadline_s: float) -> None:
        """A listening port is not enough: sshd is ready once host key and auth both check out."""
        import paramiko

        client_key = paramiko.Ed25519Key.from_private_key_file(str(self.client_key))
        host_key = paramiko.Ed25519Key.from_private_key_file(
            str(self.keys / "ssh_host_ed25519_key")
        )
        deadline = time.monotonic() + deadline_s

        def handshake(node: Node) -> str | None:
            last = "no attempt"
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", node.port), timeout=3) as sock:
                        t = paramiko.Transport(sock)
                        try:
                            t.banner_timeout = 3
                            t.start_client(timeout=3)
                            if t.get_remote_server_key() != host_key:
                                return f"{node.name}: unexpected host key"
                            t.auth_publickey("root", client_key)
                            if t.is_authenticated():
                                return None
                        finally:
                            t.close()
                except (OSError, EOFError, paramiko.SSHException) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.3)
            return f"{node.name} (127.0.0.1:{node.port}): not ready after {deadline_s:g}s: {last}"

        with ThreadPoolExecutor(max_workers=8) as pool:
            errors = [e for e in pool.map(handshake, self.nodes) if e]
        if errors:
            raise RuntimeError("fleet not ready: " + "; ".join(errors[:5]))

    # -- teardown

    def down(self, timeout: float = 120.0) -> None:
        """Remove every container of this run (by id, then by label as a net); bounded."""
        t0 = time.monotonic()
        ids = [n.cid for n in self.nodes if n.cid]
        try:
            found = sh(
                ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={LABEL}={self.tag}"],
                30,
                check=False,
            ).stdout.split()
        except subprocess.TimeoutExpired:
            found = []
        ids = list(dict.fromkeys(ids + found))
        for i in range(0, len(ids), 50):
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                log(
                    "teardown: out of time; remove the rest with: "
                    f"docker rm -f $(docker ps -aq --filter label={LABEL}={self.tag})"
                )
                return
            try:
                sh(["docker", "rm", "-f", "-v", *ids[i : i + 50]], left, check=False)
            except subprocess.TimeoutExpired:
                log("teardown: docker rm timed out")
        if ids:
            log(f"removed {len(ids)} containers in {time.monotonic() - t0:.1f}s")
