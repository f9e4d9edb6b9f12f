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
        """The last lines of stderr (or stdout), joined for a one-line error."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-lines:])


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
    seconds pass.
    """

    host: Host

    def run(
        self, script: str, *, stdin: Stdin = NO_STDIN, timeout: float | None = None
    ) -> Result: ...

    def close(self) -> None: ...


TransportFactory = Callable[[Host], Transport]
