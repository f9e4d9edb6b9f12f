"""The mux side a run uses: `MuxTransport`, and finding or starting the daemon.

A run talks to the daemon over one Unix connection per host, so the
daemon's per-client thread holds exactly that host's SSH connection for the
run.  A `run` asked with `on_line` gets `line` messages while the script
runs, then its reply.  The artifact is not copied through the socket: the daemon (same user)
opens the file by path and streams it to the host itself.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fleetdist.config.schema import Host
from fleetdist.errors import HostKeyError, TransportError
from fleetdist.transport.base import (
    HANDSHAKE_ATTEMPTS,
    NO_STDIN,
    LineSink,
    Result,
    Stdin,
    Transport,
)
from fleetdist.transport.mux import wire

START_TIMEOUT = 15.0
POLL = 0.02
# The daemon enforces each command's timeout; this margin only guards against a hung daemon.
REPLY_MARGIN = 30.0


class DaemonGone(TransportError):
    """The daemon closed or reset the connection (it may have been exiting just then)."""


class MuxTransport:
    """One host's pooled SSH connection, reached through the daemon."""

    def __init__(self, host: Host, sock: socket.socket) -> None:
        self.host = host
        self._sock = sock

    def open(self, accept_new: bool, persist: float) -> None:
        request = {
            "op": "open",
            "host": wire.host_to_wire(self.host),
            "accept_new": accept_new,
            "persist": persist,
        }
        self._call(request, self.host.connect_timeout * 4 * HANDSHAKE_ATTEMPTS + REPLY_MARGIN)

    def run(
        self,
        script: str,
        *,
        stdin: Stdin = NO_STDIN,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> Result:
        """As `SSHTransport.run`, executed by the daemon on its connection."""
        limit = self.host.command_timeout if timeout is None else timeout
        request = {
            "op": "run",
            "script": script,
            "timeout": limit,
            "stdin": str(stdin.file.resolve()) if stdin.file else None,
            "stdin_after": stdin.after,
            "stdin_head": base64.b64encode(stdin.head).decode(),
            "stream": on_line is not None,
        }
        reply = self._call(request, limit + self.host.connect_timeout * 2 + REPLY_MARGIN, on_line)
        return Result(int(reply["exit"]), str(reply["stdout"]), str(reply["stderr"]))

    def close(self) -> None:
        """Hand the connection back to the pool (the daemon keeps it for `--persist`)."""
        self._sock.close()

    def _call(
        self, request: dict[str, Any], wait: float, on_line: LineSink | None = None
    ) -> dict[str, Any]:
        """Send `request`; pass streamed `line` messages to `on_line` until the reply."""
        try:
            self._sock.settimeout(wait)
            wire.send(self._sock, request)
            while (reply := wire.receive(self._sock)) is not None and reply.get("op") == "line":
                if on_line is not None:
                    on_line(str(reply["stream"]), str(reply["line"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DaemonGone(f"host {self.host.name}: connection lost: mux daemon: {exc}") from exc
        if reply is None:
            raise DaemonGone(f"host {self.host.name}: connection lost: mux daemon went away")
        if "error" in reply:
            kind = HostKeyError if reply.get("kind") == "hostkey" else TransportError
            raise kind(str(reply["error"]))
        return reply


class MuxFactory:
    """A run's factory: one daemon connection per host, handshakes bounded per run."""

    def __init__(self, *, accept_new_host_keys: bool, max_connect: int, persist: float) -> None:
        self.accept_new = accept_new_host_keys
        self.persist = persist
        self.gate = threading.BoundedSemaphore(max_connect)
        self.path = wire.socket_path()
        connect(self.path).close()  # start it now, so a failure falls back before any host

    def __call__(self, host: Host) -> Transport:
        """Open `host` through the daemon; a daemon that was just exiting is started again once.

        Retrying is safe here and only here: `open` runs nothing on the host.
        """
        try:
            return self._open(host)
        except DaemonGone:
            return self._open(host)

    def _open(self, host: Host) -> MuxTransport:
        try:
            sock = connect(self.path)
        except OSError as exc:
            raise TransportError(f"host {host.name}: mux daemon unavailable: {exc}") from exc
        transport = MuxTransport(host, sock)
        try:
            with self.gate:
                transport.open(self.accept_new, self.persist)
        except BaseException:
            transport.close()
            raise
        return transport


def _dial(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def connect(path: Path) -> socket.socket:
    """A connection to the daemon at `path`, starting one if none answers.

    Starting is serialised with a lock file, so simultaneous runs start one
    daemon; a socket left by a dead daemon is replaced.
    """
    with contextlib.suppress(OSError):
        return _dial(path)
    lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            return _dial(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _start(path)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                return _dial(path)
            except OSError as exc:
                if time.monotonic() > deadline:
                    message = f"mux daemon did not start within {START_TIMEOUT:g}s"
                    raise wire.MuxError(message) from exc
                time.sleep(POLL)
    finally:
        os.close(lock_fd)


def _start(path: Path) -> None:
    """Run the daemon detached: its own session, no inherited pipes, cwd /."""
    with open(f"{path}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetdist.transport.mux", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            start_new_session=True,
        )
    try:
        code = proc.wait(timeout=START_TIMEOUT)  # the daemon forks; this parent exits at once
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        raise wire.MuxError("mux daemon did not detach") from exc
    if code != 0:
        raise wire.MuxError(f"mux daemon exited with status {code} (see {path}.log)")


def stop_daemons() -> int:
    """Ask every daemon of this user to close its connections and exit; how many answered.

    Every one, not just this install's: a daemon started by an older
    fleetdist or another Python still holds connections worth closing.
    """
    try:
        sockets = sorted(wire.private_dir().glob("*.sock"))
    except OSError:
        return 0
    stopped = 0
    for path in sockets:
        try:
            with _dial(path) as sock:
                sock.settimeout(10)
                wire.send(sock, {"op": "exit"})
                stopped += wire.receive(sock) is not None
        except (OSError, ValueError):
            continue  # a socket left by a daemon that is gone
    return stopped
