"""The running sshd test fleet as tests see it (built by conftest.py's `fleet`)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import yaml

WEB = ("web01", "web02", "web03", "web04", "web05")
SERVICES = (*WEB, "tiny", "crowded")
CROWDED_HOSTS = tuple(f"node{i:02d}" for i in range(1, 21))


@dataclass(frozen=True)
class Fleet:
    """The running fleet, as tests see it.

    `ports` maps compose service -> host port on 127.0.0.1; inventory host
    names node01..node20 all live on the "crowded" service.  `app_ports`
    maps service -> the host port on 127.0.0.1 of its port 8000, where the
    example app serves HTTP in the load balancer tests (lb.py).
    """

    ports: dict[str, int]
    key: Path
    known_hosts: Path
    host_key: paramiko.PKey
    containers: dict[str, str]
    env: dict[str, str] = field(repr=False)
    app_ports: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def service_of(name: str) -> str:
        return "crowded" if re.fullmatch(r"node\d\d", name) else name

    def inventory(
        self,
        tmp_path: Path,
        services: Iterable[str] = WEB,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write `tmp_path/inventory.yml` for `services` ("crowded" = node01..node20).

        `extra` is deep-merged into the document, e.g.
        `{"defaults": {"command_timeout": 5}, "hosts": {"web01": {"vars": {...}}}}`.
        """
        hosts: dict[str, Any] = {}
        for service in services:
            port = self.ports[service]
            if service == "crowded":
                for node in CROWDED_HOSTS:
                    hosts[node] = {"hostname": "127.0.0.1", "port": port}
                    hosts[node]["vars"] = {"DEPLOY_BASE": f"/srv/{node}"}
            else:
                hosts[service] = {"hostname": "127.0.0.1", "port": port}
        groups = {
            "web": {"hosts": [h for h in hosts if h in WEB]},
            "nodes": {"hosts": [h for h in hosts if h in CROWDED_HOSTS]},
        }
        doc: dict[str, Any] = {
            "defaults": {
                "transport": "ssh",
                "user": "root",
                "identity_file": str(self.key),
                "known_hosts": str(self.known_hosts),
                "connect_timeout": 10,
                "command_timeout": 120,
            },
            "groups": {name: group for name, group in groups.items() if group["hosts"]},
            "hosts": hosts,
        }
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump(_merge(doc, extra or {}), sort_keys=False))
        return path

    def exec(
        self, service: str, cmd: str | Sequence[str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`docker exec` on the container behind `service` (or host name node07).

        A string runs under `sh -c`.  Never raises for a non-zero exit.
        """
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        container = self.containers[self.service_of(service)]
        return subprocess.run(
            ["docker", "exec", container, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.env,
        )

    def reset(self) -> None:
        """Empty /srv on every container (keeping /srv itself: on "tiny" it is a mount)."""
        procs = {
            service: subprocess.Popen(
                ["docker", "exec", cid, "find", "/srv", "-mindepth", "1", "-delete"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
            )
            for service, cid in self.containers.items()
        }
        failed = []
        for service, proc in procs.items():
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode != 0:
                failed.append(f"{service}: {err.strip()}")
        if failed:
            raise RuntimeError(f"fleet reset failed: {'; '.join(failed)}")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
