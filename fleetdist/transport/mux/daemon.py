"""The mux daemon: a pool of open SSH connections shared by successive runs.

Started by the first run that wants it (`client.connect`), detached from it,
and gone on its own once every pooled connection has idled for its run's
`--persist` seconds and no run is connected.  One thread per connected
client; each client is one host of one run, so a connection is lent to one
run at a time and returned to the pool when that run closes its transport.

Started as `python -m fleetdist.transport.mux SOCKET` (see `__main__.py`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist.config.schema import Host
from fleetdist.errors import FleetdistError, HostKeyError
from fleetdist.transport.base import Stdin
from fleetdist.transport.factory import raise_open_files_limit
from fleetdist.transport.mux import wire
from fleetdist.transport.ssh import SSHTransport, ssh_transport_factory

log = logging.getLogger(__name__)

LINGER = 10.0  # seconds with nothing pooled and no client before the daemon exits
TICK = 1.0
UNLIMITED_HANDSHAKES = 1 << 16  # each client run bounds its own handshakes


@dataclass
class _Idle:
    transport: SSHTransport
    expires: float


class Pool:
    """Idle connections by what they were opened with; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[Any, ...], list[_Idle]] = {}
        self._openers = {
            flag: ssh_transport_factory(accept_new_host_keys=flag, max_connect=UNLIMITED_HANDSHAKES)
            for flag in (False, True)
        }
        self.clients = 0
        self.closing = False  # set on `exit`: connections still lent out close on return
        self.quiet_since = time.monotonic()

    @staticmethod
    def key(host: Host, accept_new: bool) -> tuple[Any, ...]:
        """Everything the handshake depended on; timeouts and names do not matter."""
        return (
            host.address,
            host.port,
            host.user,
            host.identity_file,
            host.known_hosts,
            host.jump_host,
            accept_new,
        )

    def take(self, host: Host, accept_new: bool) -> SSHTransport:
        """A pooled connection for `host`, or a new one (raises TransportError)."""
        key = self.key(host, accept_new)
        while True:
            with self._lock:
                idle = self._idle.get(key)
                item = idle.pop() if idle else None
            if item is None:
                return self._openers[accept_new](host)
            if item.transport.usable():
                item.transport.host = host  # this run's name and timeouts
                item.transport.pooled = True
                return item.transport
            item.transport.close()

    def give_back(self, transport: SSHTransport, accept_new: bool, persist: float) -> None:
        if persist <= 0 or self.closing:
            transport.close()
            return
        with self._lock:
            slot = self._idle.setdefault(self.key(transport.host, accept_new), [])
            slot.append(_Idle(transport, time.monotonic() + persist))

    def expire(self, everything: bool = False) -> bool:
        """Close what idled past its time; True when the daemon has nothing left to keep."""
        now = time.monotonic()
        closing: list[_Idle] = []
        with self._lock:
            for key, items in list(self._idle.items()):
                keep: list[_Idle] = []
                for item in items:
                    (closing if everything or item.expires <= now else keep).append(item)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            done = not self._idle and self.clients == 0 and now >= self.quiet_since + LINGER
        for item in closing:
            item.transport.close()
        return done

    def enter(self) -> None:
        with self._lock:
            self.clients += 1

    def leave(self) -> None:
        with self._lock:
            self.clients -= 1
            self.quiet_since = time.monotonic()


def _serve_client(sock: socket.socket, pool: Pool, stop: threading.Event) -> None:
    """One run's transport to one host: `open` once, then any number of `run`s."""
    pool.enter()
    held: tuple[SSHTransport, bool, float] | None = None
    try:
        while (request := wire.receive(sock)) is not None:
            op = request.get("op")
            if op == "exit":  # idle connections close before the reply: `disconnect` is synchronous
                pool.closing = True
                pool.expire(everything=True)
                stop.set()
                wire.send(sock, {"ok": True})
                return
            if op == "open" and held is None:
                accept_new, persist = bool(request["accept_new"]), float(request["persist"])
                try:
                    transport = pool.take(wire.host_from_wire(request["host"]), accept_new)
                except FleetdistError as exc:
                    wire.send(sock, _error(exc))
                    continue
                held = (transport, accept_new, persist)
                wire.send(sock, {"ok": True})
            elif op == "run" and held is not None:
                wire.send(sock, _run(held[0], request, sock))
            else:
                wire.send(sock, {"error": f"mux: unexpected request {op!r}", "kind": "transport"})
    except (OSError, ValueError, KeyError, TypeError) as exc:  # gone, or not speaking the protocol
        log.warning("client dropped: %s", exc)
        if held is not None:  # a run cut off mid-command: its channel state is unknown
            held[0].close()
            held = None
    finally:
        if held is not None:
            pool.give_back(*held)
        sock.close()
        pool.leave()


def _run(transport: SSHTransport, request: dict[str, Any], client: socket.socket) -> dict[str, Any]:
    """Run one script; with `stream`, each output line goes to the client as it arrives."""
    stdin = request.get("stdin")

    def forward(stream: str, line: str) -> None:
        # A client gone away makes this raise OSError: the run ends as a lost connection.
        wire.send(client, {"op": "line", "stream": stream, "line": line})

    try:
        result = transport.run(
            request["script"],
            stdin=Stdin(
                Path(stdin) if stdin else None,
                request.get("stdin_after"),
                base64.b64decode(request.get("stdin_head") or ""),
            ),
            timeout=request.get("timeout"),
            on_line=forward if request.get("stream") else None,
            abort=client,
        )
    except FleetdistError as exc:
        return _error(exc)
    return {"exit": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}


def _error(exc: FleetdistError) -> dict[str, Any]:
    return {"error": str(exc), "kind": "hostkey" if isinstance(exc, HostKeyError) else "transport"}


def serve(path: Path) -> None:
    """Listen on `path` until the pool is empty and idle (or a client asks to exit)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    listener.bind(str(staging))
    os.chmod(staging, 0o600)
    listener.listen(256)
    os.replace(staging, path)  # clients never see a socket that is not listening yet
    mine = path.stat().st_ino
    listener.settimeout(TICK)
    pool, stop = Pool(), threading.Event()
    try:
        while not stop.is_set() and not pool.expire():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(None)
            if wire.peer_uid(sock) != os.getuid():
                sock.close()
                continue
            threading.Thread(target=_serve_client, args=(sock, pool, stop), daemon=True).start()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == mine:  # a newer daemon may own the path now
                path.unlink()
        pool.closing = True
        while pool.clients:  # runs still using a connection finish (each bounded by its timeout)
            time.sleep(TICK / 10)
        pool.expire(everything=True)


def serve_forever(path: str) -> None:
    """The detached daemon's whole life: log warnings to stderr (the log file), serve."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s mux %(levelname)s %(message)s")
    raise_open_files_limit()  # two descriptors per pooled host: its SSH socket and its client
    serve(Path(path))
