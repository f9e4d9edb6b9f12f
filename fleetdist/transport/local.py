"""The transport protocol over subprocess, for hosts that are directories here.

Scripts run under `sh -c` exactly as SSH would run them; the host's
`local_root` is already part of every path (see `release.layout.host_root`),
so the same rendered steps work on both transports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from fleetdist.config.schema import Host
from fleetdist.errors import TransportError
from fleetdist.transport.base import NO_STDIN, Result, Stdin


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

    def run(self, script: str, *, stdin: Stdin = NO_STDIN, timeout: float | None = None) -> Result:
        """`sh -c script` here; `stdin.after` needs no wait, as a file costs nothing unread."""
        try:
            with _feed(stdin) as feed:
                proc = subprocess.run(
                    ["sh", "-c", script],
                    cwd=self.root,
                    stdin=feed,
                    capture_output=True,
                    timeout=timeout or self.host.command_timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            raise TransportError(f"host {self.host.name}: command timed out") from None
        return Result(proc.returncode, _text(proc.stdout), _text(proc.stderr))

    def close(self) -> None:
        """Nothing to close: every run is its own process."""


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _feed(stdin: Stdin) -> BinaryIO:
    """An open file holding the head and then the file (a temporary copy if there is a head)."""
    if not stdin.head:
        return stdin.file.open("rb") if stdin.file else open(os.devnull, "rb")
    feed = tempfile.TemporaryFile()  # noqa: SIM115 (the caller's `with` closes it)
    feed.write(stdin.head)
    if stdin.file:
        with stdin.file.open("rb") as src:
            shutil.copyfileobj(src, feed)
    feed.seek(0)
    return feed
