"""The SSH transport: Fabric's Connection with strict host keys and bounded waits.

What a caller can rely on:
  * one SSH connection per host, opened when the transport is created and
    reused by every `run` (re-opened once if it dropped), each `run` one
    session channel, with an artifact streamed on the same channel's stdin;
  * host keys checked against known_hosts (see `hostkeys.py`); Fabric's
    AutoAddPolicy is replaced on the target and on every jump host;
  * ssh_config (~/.ssh/config: aliases, ports, users, IdentityFile,
    ProxyJump) is left to Fabric/Paramiko, and explicit inventory settings win;
  * at most `max_connect` handshakes in flight per factory, and a handshake
    that sshd drops (MaxStartups) is retried a few times with jittered backoff;
  * every failure to reach or talk to the host is a one-line TransportError
    naming the host; a non-zero exit is a Result, never an exception.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection
from paramiko.agent import AgentRequestHandler
from paramiko.ssh_exception import AuthenticationException, BadHostKeyException, SSHException

from fleetdist.config.schema import Host
from fleetdist.errors import HostKeyError, TransportError
from fleetdist.transport.base import HANDSHAKE_ATTEMPTS, NO_STDIN, Lines, LineSink, Result, Stdin
from fleetdist.transport.channel import exchange
from fleetdist.transport.hostkeys import (
    HostKeyPolicy,
    KnownHosts,
    changed_key_message,
    host_key_name,
    known_hosts_for,
)

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
_DROP_MARKERS = ("protocol banner", "reset by peer", "EOF", "Connection closed")


def _reason(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


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
        self.pooled = False  # set by the mux pool: this connection sat idle and may be dead

    def run(
        self,
        script: str,
        *,
        stdin: Stdin = NO_STDIN,
        timeout: float | None = None,
        on_line: LineSink | None = None,
        abort: socket.socket | None = None,
    ) -> Result:
        """Run `script` with `sh -c` on one session channel; stream `stdin` into it.

        `on_line` gets each output line as it arrives (see `base.Transport`).

        `abort` is the mux daemon's link to the run that asked: if that run
        goes away (killed), the channel is closed as if its own connection had
        dropped, rather than the script's output being waited for.

        `sh -c` rather than feeding the script on stdin: the prepare script
        receives the artifact there, and no test or hook could then swallow
        the rest of the script.  With an empty `stdin`, stdin is /dev/null so
        no command can hang waiting for input; with only a head, it ends right
        after it.  The script is visible in the host's process list, so secret
        values come in the head, never in its text.

        A bare Paramiko channel instead of Fabric's `run`: one reader in this
        thread instead of invoke's three polling threads per command, which
        at a hundred hosts was a large share of the controller's CPU.
        """
        limit = self.host.command_timeout if timeout is None else timeout
        command = f"sh -c {shlex.quote(script)}" + (" </dev/null" if stdin.empty else "")
        try:
            with stdin.file.open("rb") if stdin.file else contextlib.nullcontext() as feed:
                chan = self._session()
                agent = AgentRequestHandler(chan) if self.host.forward_agent else None
                try:
                    chan.exec_command(command)
                    after = stdin.after.encode() if stdin.after is not None else None
                    deadline = time.monotonic() + limit
                    sinks = (Lines("stdout", on_line), Lines("stderr", on_line))
                    return exchange(chan, feed, deadline, abort, after, stdin.head, sinks)
                finally:
                    chan.close()
                    if agent is not None:
                        agent.close()
        except TimeoutError as exc:
            message = f"host {self.host.name}: command timed out after {limit:g}s"
            raise TransportError(message) from exc
        except (SSHException, OSError, EOFError) as exc:
            raise TransportError(f"host {self.host.name}: connection lost: {_reason(exc)}") from exc

    def _session(self) -> Any:
        """A new session channel; a pooled connection that died while idle is re-opened once.

        Nothing has run on the host when opening a channel fails, so trying
        again on a fresh connection cannot run a script twice.
        """
        if not self._conn.is_connected:
            self._opener.open(self.host, self._conn)
        try:
            return self._conn.client.get_transport().open_session(timeout=self.host.connect_timeout)
        except (SSHException, OSError, EOFError):
            if not self.pooled:
                raise
        self.pooled = False
        self.close()
        self._opener.open(self.host, self._conn)
        return self._conn.client.get_transport().open_session(timeout=self.host.connect_timeout)

    def usable(self) -> bool:
        """Still connected, and every hop's host key still in known_hosts (checked before reuse).

        A key removed from known_hosts since the handshake, the target's or a
        jump host's, must not keep a pooled connection trusted: the next
        handshake re-applies the policy.
        """
        if not self._conn.is_connected:
            return False
        store = known_hosts_for(self.host.known_hosts)
        hop = self._conn
        while isinstance(hop, Connection):  # the target, then each jump host
            transport = hop.client.get_transport()
            if transport is None or not transport.is_active():
                return False
            key = transport.get_remote_server_key()
            known = store.lookup(host_key_name(hop.host, int(hop.port))).get(key.get_name())
            if known != key:
                return False
            hop = hop.gateway
        return True

    def close(self) -> None:
        """Close the connection and any jump connections."""
        try:
            self._conn.close()
        except (SSHException, OSError, EOFError) as exc:
            log.debug("host %s: error while closing: %s", self.host.name, _reason(exc))


class _FleetTransport(paramiko.Transport):
    """Paramiko's Transport, tuned for many connections in one process.

    AES-GCM is offered first: it needs no separate per-packet HMAC, which
    Paramiko computes and compares in Python; every other cipher stays
    available.  And an idle connection's reader thread wakes once a second
    instead of ten times: with a hundred connections open (a rollout, or the
    mux daemon's pool) those wake-ups fight the busy threads for the GIL.
    Nothing waits on that tick: closing shuts the socket, which wakes the
    reader at once, and our own command deadlines run in the caller's thread.
    """

    _active_check_timeout = 1.0
    _preferred_ciphers = (
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        *(c for c in paramiko.Transport._preferred_ciphers if "gcm" not in c),  # type: ignore[attr-defined]
    )


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

    def __call__(self, host: Host) -> SSHTransport:
        conn = self.connection(host)
        self.open(host, conn)
        return SSHTransport(host, conn, self)

    def connection(self, host: Host) -> Any:
        """A not-yet-open Connection; inventory values win over ssh_config."""
        config = Config(ssh_config=self.ssh_config)
        timeouts = self._timeouts(host)
        connect_kwargs: dict[str, Any] = {**timeouts, "transport_factory": _FleetTransport}
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
) -> Callable[[Host], SSHTransport]:
    """A factory that opens one SSHTransport per host.

    Create one factory per rollout: its semaphore bounds concurrent handshakes
    across all worker threads, and ssh_config is parsed once for all hosts.
    """
    return _Opener(accept_new_host_keys, max_connect)
