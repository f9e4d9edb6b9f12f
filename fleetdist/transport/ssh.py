"""The SSH transport: Fabric's Connection with strict host keys and bounded waits.

What a caller can rely on:
  * one SSH connection per host, opened when the transport is created and
    reused by every `run` and `put` (re-opened once if it dropped);
  * host keys checked against known_hosts (see `hostkeys.py`); Fabric's
    AutoAddPolicy is replaced on the target and on every jump host;
  * ssh_config (~/.ssh/config: aliases, ports, users, IdentityFile,
    ProxyJump) is left to Fabric/Paramiko, and explicit inventory settings win;
  * at most `max_connect` handshakes in flight per factory, and a handshake
    that sshd drops (MaxStartups) is retried a few times with jittered backoff;
  * every failure to reach or talk to the host is a one-line TransportError
    naming the host; a non-zero exit is a Result, never an exception; a file
    the host refuses (full disk) is an UploadError, as on the local transport.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import posixpath
import random
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut
from paramiko.ssh_exception import AuthenticationException, BadHostKeyException, SSHException

from fleetdist.config.schema import Host
from fleetdist.errors import HostKeyError, TransportError, UploadError
from fleetdist.transport.base import Result, Transport
from fleetdist.transport.hostkeys import (
    HostKeyPolicy,
    KnownHosts,
    changed_key_message,
    host_key_name,
    known_hosts_for,
)

log = logging.getLogger(__name__)

HANDSHAKE_ATTEMPTS = 8
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
_DROP_MARKERS = ("protocol banner", "reset by peer", "EOF", "Connection closed")


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _makedirs(sftp: Any, folder: str) -> None:
    """`mkdir -p` over SFTP: create each missing component, top down."""
    missing: list[str] = []
    while folder not in ("", "/"):
        try:
            sftp.stat(folder)
            break
        except FileNotFoundError:
            missing.append(folder)
            folder = posixpath.dirname(folder)
    for path in reversed(missing):
        sftp.mkdir(path)


def _dropped(exc: BaseException) -> bool:
    """True if sshd closed the connection during the handshake (worth a retry).

    sshd over its MaxStartups limit accepts and then closes at once; Paramiko
    reports that as EOF or "Error reading SSH protocol banner".  A banner that
    *timed out* is a slow or non-SSH peer, and retrying would only wait again.
    """
    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__ or exc.__context__, TimeoutError):
        return False
    if isinstance(exc, (EOFError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return True
    return isinstance(exc, SSHException) and any(m in str(exc) for m in _DROP_MARKERS)


class SSHTransport:
    """One host over SSH (see the module docstring for the guarantees)."""

    def __init__(self, host: Host, conn: Any, opener: _Opener) -> None:
        self.host = host
        self._conn = conn
        self._opener = opener

    def run(self, script: str, *, timeout: float | None = None) -> Result:
        """Run `script` with `sh -c`, stdin from /dev/null.

        `sh -c` rather than feeding the script to `sh -s` on stdin: with `-s`
        any command in the script that reads stdin (a hook, `read`, `python -`)
        would swallow the rest of the script.  Redirecting stdin from /dev/null
        also means no command can hang waiting for input.  (The script is thus
        visible in the host's process list: callers pass secrets via env files.)
        """
        limit = self.host.command_timeout if timeout is None else timeout
        self._ensure_open()
        command = f"sh -c {shlex.quote(script)} </dev/null"
        try:
            res = self._conn.run(command, hide=True, warn=True, in_stream=False, timeout=limit)
        except CommandTimedOut as exc:
            message = f"host {self.host.name}: command timed out after {limit:g}s"
            raise TransportError(message) from exc
        except (SSHException, OSError, EOFError) as exc:
            raise TransportError(f"host {self.host.name}: connection lost: {_reason(exc)}") from exc
        return Result(exit_code=int(res.exited), stdout=res.stdout, stderr=res.stderr)

    def put(self, local: Path, remote: str) -> None:
        """Stream `local` to `remote` over SFTP, creating missing parent directories.

        Never reads the file into memory.  The local file is opened first, so a
        missing artifact is the caller's OSError.  If the host refuses the file
        (full disk, permissions) it is an UploadError, like the local
        transport's, and the partial file is removed; only a lost connection
        or a stalled transfer is a TransportError.
        """
        with open(local, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._ensure_open()
            sftp = None
            try:
                sftp = self._conn.sftp()
                sftp.get_channel().settimeout(self.host.command_timeout)
                _makedirs(sftp, posixpath.dirname(remote))
                sftp.putfo(fh, remote, file_size=size, confirm=True)
            except (SSHException, EOFError, TimeoutError, ConnectionError) as exc:
                raise TransportError(
                    f"host {self.host.name}: upload to {remote}: connection lost: {_reason(exc)}"
                ) from exc
            except OSError as exc:  # an SFTP status: the host refused the file
                if not self._conn.is_connected:
                    raise TransportError(
                        f"host {self.host.name}: upload to {remote}: connection lost"
                    ) from exc
                reason = self._refusal(sftp, remote, size, exc)
                raise UploadError(
                    f"host {self.host.name}: upload to {remote} failed: {reason}"
                ) from exc

    def _refusal(self, sftp: Any, remote: str, size: int, exc: OSError) -> str:
        """Why the host refused an upload, in words an operator can act on.

        OpenSSH's sftp-server reports a full disk as the bare status "Failure",
        so after removing the partial file we ask `df` whether it would fit.
        """
        if exc.errno is not None:
            return exc.strerror or _reason(exc)
        with contextlib.suppress(OSError, SSHException, AttributeError):
            sftp.remove(remote)
        with contextlib.suppress(TransportError, ValueError, IndexError):
            folder = posixpath.dirname(remote) or "/"
            df = self.run(f"df -Pk {shlex.quote(folder)}", timeout=self.host.connect_timeout)
            free_kib = int(df.stdout.splitlines()[-1].split()[3])
            if free_kib * 1024 < size:
                need = math.ceil(size / 1024)
                return f"no space left on device ({free_kib} KiB free, {need} KiB needed)"
        return _reason(exc)

    def close(self) -> None:
        """Close the SFTP session, the connection and any jump connections."""
        try:
            self._conn.close()
        except (SSHException, OSError, EOFError) as exc:
            log.debug("host %s: error while closing: %s", self.host.name, _reason(exc))

    def _ensure_open(self) -> None:
        if not self._conn.is_connected:
            self._opener.open(self.host, self._conn)


class _Opener:
    """Builds and opens Connections: shared ssh_config, handshake limit, retries."""

    def __init__(self, accept_new_host_keys: bool, max_connect: int) -> None:
        if max_connect < 1:
            raise ValueError(f"max_connect must be at least 1, not {max_connect}")
        self.accept_new = accept_new_host_keys
        self.gate = threading.BoundedSemaphore(max_connect)
        # ssh_config files are parsed once here; each Connection still gets its
        # own Fabric Config, because invoke Config objects are not thread-safe
        # (sharing one across worker threads fails at random under load).
        self.ssh_config = Config().base_ssh_config

    def __call__(self, host: Host) -> Transport:
        conn = self.connection(host)
        self.open(host, conn)
        return SSHTransport(host, conn, self)

    def connection(self, host: Host) -> Any:
        """A not-yet-open Connection; inventory values win over ssh_config."""
        config = Config(ssh_config=self.ssh_config)
        timeouts = self._timeouts(host)
        connect_kwargs: dict[str, Any] = dict(timeouts)
        if host.identity_file:
            connect_kwargs["key_filename"] = [str(Path(host.identity_file).expanduser())]
        gateway = None
        if host.jump_host:  # "[user@]host[:port]"; the inventory's key serves both hops
            gateway = Connection(host.jump_host, config=config, connect_kwargs=dict(connect_kwargs))
        conn = Connection(
            host.address,
            user=host.user,
            port=host.port,
            config=config,
            gateway=gateway,
            connect_timeout=math.ceil(host.connect_timeout),
            connect_kwargs=connect_kwargs,
        )
        store = known_hosts_for(host.known_hosts)
        hop = conn
        while isinstance(hop, Connection):  # the target, then each jump host
            self._secure(hop, host, store, timeouts)
            hop = hop.gateway
        return conn

    def _timeouts(self, host: Host) -> dict[str, float]:
        bound = max(1.0, host.connect_timeout)
        return {"banner_timeout": bound, "auth_timeout": bound, "channel_timeout": bound}

    def _secure(self, hop: Any, host: Host, store: KnownHosts, timeouts: dict[str, float]) -> None:
        hop.client.set_missing_host_key_policy(HostKeyPolicy(store, host.name, self.accept_new))
        store.install(hop.client, host_key_name(hop.host, int(hop.port)))
        if hop.connect_timeout is None:  # jump hosts from ssh_config ProxyJump
            hop.connect_timeout = math.ceil(host.connect_timeout)
        for key, value in timeouts.items():
            hop.connect_kwargs.setdefault(key, value)

    def open(self, host: Host, conn: Any) -> None:
        """Handshake under the semaphore; retry only handshakes sshd dropped."""
        with self.gate:
            for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
                try:
                    conn.open()
                    return
                except TransportError:  # HostKeyError from our policy: already one line
                    conn.close()
                    raise
                except (SSHException, OSError, EOFError) as exc:
                    conn.close()
                    if attempt < HANDSHAKE_ATTEMPTS and _dropped(exc):
                        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
                        log.debug("host %s: handshake dropped, retry %d", host.name, attempt)
                        time.sleep(delay * random.uniform(0.5, 1.5))
                        continue
                    raise _connect_error(host, conn, exc) from exc


def _connect_error(host: Host, conn: Any, exc: Exception) -> TransportError:
    """Map what Paramiko/Fabric raised while connecting to one line naming the host."""
    target = host_key_name(conn.host, int(conn.port))
    if isinstance(exc, BadHostKeyException):
        path = known_hosts_for(host.known_hosts).path
        return HostKeyError(changed_key_message(host.name, target, path))
    if isinstance(exc, AuthenticationException):
        return TransportError(
            f"host {host.name}: authentication failed for {conn.user}@{target}: {_reason(exc)}"
        )
    return TransportError(f"host {host.name}: unreachable: {target}: {_reason(exc)}")


def ssh_transport_factory(
    *, accept_new_host_keys: bool = False, max_connect: int = 10
) -> Callable[[Host], Transport]:
    """A factory that opens one SSHTransport per host.

    Create one factory per rollout: its semaphore bounds concurrent handshakes
    across all worker threads, and ssh_config is parsed once for all hosts.
    """
    return _Opener(accept_new_host_keys, max_connect)
