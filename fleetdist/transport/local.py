"""The transport protocol over subprocess, for hosts that are directories here.

Scripts run under `sh -c` exactly as SSH would run them; the host's
`local_root` is already part of every path (see `release.layout.host_root`),
so the same rendered steps work on both transports.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from fleetdist.config.schema import Host
from fleetdist.errors import TransportError, UploadError
from fleetdist.transport.base import Result


class LocalTransport:
    def __init__(self, host: Host) -> None:
        self.host = host
        if host.local_root is None:
            raise TransportError(f"host {host.name}: local transport needs local_root")
        self.root = Path(host.local_root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(
                f"host {host.name}: unreachable: {exc.strerror}: {self.root}"
            ) from None

    def run(self, script: str, *, timeout: float | None = None) -> Result:
        try:
            proc = subprocess.run(
                ["sh", "-c", script],
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=timeout or self.host.command_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TransportError(f"host {self.host.name}: command timed out") from None
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def put(self, local: Path, remote: str) -> None:
        dest = Path(remote)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, dest)
        except OSError as exc:
            raise UploadError(f"host {self.host.name}: upload failed: {exc.strerror}") from None

    def close(self) -> None:
        """Nothing to close: every run is its own process."""
