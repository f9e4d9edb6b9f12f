"""The transport protocol: the only way fleetdist touches a host.

Everything above `transport/` renders shell scripts and hands them to a
Transport; nothing there imports Fabric or Paramiko.  The SSH and local
transports implement the same three calls, so a whole deploy is testable on
the local transport in seconds and runs unchanged over SSH.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleetdist.config.schema import Host

HANDSHAKE_ATTEMPTS = 8
"""How often a handshake sshd dropped (MaxStartups) is tried; here, not in ssh.py, so the
mux client can bound its wait on the daemon without importing Paramiko."""


@dataclass(frozen=True)
class Result:
    """What one script run on a host returned."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = 5) -> str:
        """The last lines of stderr (or stdout), joined for a one-line error.

        Protocol lines (`@@...`, see `is_protocol`) are the scripts' own
        signals to the runner, never something to show a user.
        """
        for stream in (self.stderr, self.stdout):
            text = [ln for ln in stream.strip().splitlines() if not is_protocol(ln)]
            if text:
                return " | ".join(text[-lines:])
        return ""


PROTOCOL_PREFIX = "@@"
"""What the host scripts' own signal lines (`@@send`, `@@staged`...) begin with."""


def is_protocol(line: str) -> bool:
    """True for a line a host script prints for the runner, not for people."""
    return line.startswith(PROTOCOL_PREFIX)


LineSink = Callable[[str, str], None]
"""`on_line(stream, line)`: called with "stdout" or "stderr" and one line (no newline)
as soon as the host has printed it, in the thread that called `run`."""

MAX_LINE = 1 << 16  # bytes: a longer line (or one never ended) is passed on in pieces


class Lines:
    """Split one output stream into lines as its chunks arrive, for an `on_line` sink."""

    def __init__(self, stream: str, sink: LineSink | None) -> None:
        self.stream, self.sink = stream, sink
        self.pending = bytearray()

    def add(self, chunk: bytes) -> None:
        if self.sink is None:
            return
        self.pending += chunk
        while (end := self.pending.find(b"\n")) >= 0 or len(self.pending) >= MAX_LINE:
            cut = end if end >= 0 else MAX_LINE
            self._emit(bytes(self.pending[:cut]))
            del self.pending[: cut + (end >= 0)]

    def close(self) -> None:
        """Pass on a last line the host did not end with a newline."""
        if self.pending:
            self._emit(bytes(self.pending))
            self.pending.clear()

    def _emit(self, data: bytes) -> None:
        assert self.sink is not None
        self.sink(self.stream, data.decode("utf-8", errors="replace").removesuffix("\r"))


@dataclass(frozen=True)
class Stdin:
    """What a script's standard input carries; by default nothing (/dev/null).

    `head` is sent first, at once: the script reads exactly those bytes
    before anything else (how secret values travel, never in the script's
    text, see `release.command.script`).  Then `file` is streamed (how
    artifacts travel: on the same channel as the script that receives them,
    so an upload costs no extra round trip).  With `after`, the file is sent
    only once the script has printed that line on stdout: the script looks
    at the host first and asks for the upload only if it needs it (a script
    that never prints it gets none, and must not read past the head before
    printing it).
    """

    file: Path | None = None
    after: str | None = None
    head: bytes = b""

    @property
    def empty(self) -> bool:
        return self.file is None and not self.head


NO_STDIN = Stdin()


class Transport(Protocol):
    """One open connection to one host.

    `run` executes a POSIX sh script (already quoted by `release.command`),
    its standard input fed as `stdin` says, and never raises for a non-zero
    exit: the caller decides what failure means.  It raises `TransportError`
    only when the host cannot be reached, the connection drops, or `timeout`
    seconds pass.  With `on_line`, each line of output is also handed over
    as it arrives (progress for a live view, the whole output for the run
    log); the Result still holds both streams.
    """

    host: Host

    def run(
        self,
        script: str,
        *,
        stdin: Stdin = NO_STDIN,
        timeout: float | None = None,
        on_line: LineSink | None = None,
    ) -> Result: ...

    def close(self) -> None: ...


TransportFactory = Callable[[Host], Transport]
