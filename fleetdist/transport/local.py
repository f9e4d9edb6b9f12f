"""The transport protocol over subprocess, for hosts that are directories here.

Scripts run under `sh -c` exactly as SSH would run them; the host's
`local_root` is already part of every path (see `release.layout.host_root`),
so the same rendered steps work on both transports.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from fleetdist.config.schema import Host
from fleetdist.errors import TransportError
from fleetdist.transport.base import NO_STDIN, Lines, LineSink, Result, Stdin

CHUNK = 1 << 16


class LocalTransport:
    def __init__(self, host: Host, *, read_only: bool = False) -> None:
        """Connect: make the host's root, or with `read_only` (status, a dry run's
        probe) only check that it could exist, so a look leaves no trace."""
        self.host = host
        if host.local_root is None:
            raise TransportError(f"host {host.name}: local transport needs local_root")
        self.root = Path(host.local_root)
        self._cwd = next((p for p in (self.root, *self.root.parents) if p.exists()), Path("/"))
        try:
            if not read_only:
                self.root.mkdir(parents=True, exist_ok=True)
                self._cwd = self.root
            elif not self._cwd.is_dir():
                raise NotADirectoryError(20, "Not a directory")
        except OSError as exc:
            raise TransportError(
                f"host {host.name}: unreachable: {exc.strerror}: {self.root}"
            ) from None

    def run(
        self,
        script: str,
        *,
        stdin: Stdin = NO_STDIN,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> Result:
        """`sh -c script` here; `stdin.after` needs no wait, as a file costs nothing unread.

        Both pipes are read in this thread as the script writes them, so
        `on_line` sees each line when it is printed, as over SSH.
        """
        deadline = time.monotonic() + (timeout or self.host.command_timeout)
        with (
            _feed(stdin) as feed,
            subprocess.Popen(
                ["sh", "-c", script],
                cwd=self._cwd,
                stdin=feed,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ) as proc,
        ):
            try:
                out, err = _collect(proc, deadline, on_line)
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                raise TransportError(f"host {self.host.name}: command timed out") from None
        return Result(code, _text(out), _text(err))

    def close(self) -> None:
        """Nothing to close: every run is its own process."""


def _collect(
    proc: subprocess.Popen[bytes], deadline: float, on_line: LineSink | None
) -> tuple[bytes, bytes]:
    """Read stdout and stderr until both close (raises TimeoutExpired at `deadline`)."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    streams = {
        proc.stdout.fileno(): (out, Lines("stdout", on_line)),
        proc.stderr.fileno(): (err, Lines("stderr", on_line)),
    }
    with selectors.DefaultSelector() as sel:
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            for key, _ in sel.select(min(left, 1.0)):
                data, lines = streams[key.fd]
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                    lines.close()
                data += chunk
                lines.add(chunk)
    return bytes(out), bytes(err)


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
