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

    def run(
        self,
        script: str,
        *,
        stdin: Path | None = None,
        stdin_after: str | None = None,
        stdin_head: bytes = b"",
        timeout: float | None = None,
    ) -> Result:
        """`sh -c script` here; `stdin_after` needs no wait, as a file costs nothing unread.

        With `stdin_head`, stdin is a temporary file of the head and then `stdin`.
        """
        try:
            with _feed(stdin, stdin_head) as feed:
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


def _feed(stdin: Path | None, head: bytes) -> BinaryIO:
    """An open file holding `head` and then `stdin` (or /dev/null for neither)."""
    if not head:
        return stdin.open("rb") if stdin else open(os.devnull, "rb")
    feed = tempfile.TemporaryFile()  # noqa: SIM115 (the caller's `with` closes it)
    feed.write(head)
    if stdin:
        with stdin.open("rb") as src:
            shutil.copyfileobj(src, feed)
    feed.seek(0)
    return feed
