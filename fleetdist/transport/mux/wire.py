"""What the mux client and daemon say to each other, and where they meet.

Messages are length-prefixed JSON over a Unix socket.  The socket lives in a
directory only this user can enter (checked, not assumed), and the daemon
also checks each peer's uid: the pool holds authenticated root shells on a
fleet, so nobody else may reach it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import stat
import struct
import sys
from pathlib import Path
from typing import Any

from fleetdist.config.schema import Host

HEADER = struct.Struct(">I")
MAX_MESSAGE = 8 << 20  # each output stream is capped at 1 MiB by the SSH transport
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with its NUL
_STAMPED = ("wire.py", "daemon.py", "../ssh.py", "../hostkeys.py")
_SSH_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")


class MuxError(OSError):
    """The daemon cannot be used here; the caller falls back to direct SSH."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(HEADER.pack(len(data)) + data)


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """The next message, or None if the peer closed the connection between messages."""
    head = _exactly(sock, HEADER.size)
    if head is None:
        return None
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise MuxError(f"mux message of {size} bytes refused")
    body = _exactly(sock, size)
    if body is None:
        raise MuxError("mux peer closed mid-message")
    message = json.loads(body)
    if not isinstance(message, dict):
        raise MuxError("mux message is not an object")
    return message


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            if data:
                raise MuxError("mux peer closed mid-message")
            return None
        data += chunk
    return bytes(data)


def host_to_wire(host: Host) -> dict[str, Any]:
    return dataclasses.asdict(host)


def host_from_wire(data: dict[str, Any]) -> Host:
    return Host(**{**data, "groups": tuple(data.get("groups", ()))})


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (Linux SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def private_dir() -> Path:
    """The user's mux directory, created 0700; refused if anyone else could enter it."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "fleetdist" if runtime else Path.home() / ".cache" / "fleetdist"
    path = base / "mux"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise MuxError(f"{path}: must belong to this user with mode 0700")
    return path


def socket_path() -> Path:
    """Where this user's daemon listens.

    The name hashes what a daemon must share with its clients: the Python and
    fleetdist code it runs, the ssh_config files it parsed and the SSH agent it
    signs with.  A client that differs in any of these gets its own daemon;
    the stale one idles out.
    """
    here = Path(__file__).resolve().parent
    stamp = [sys.executable, os.environ.get("SSH_AUTH_SOCK", "")]
    for name in (*(str(here / f) for f in _STAMPED), *_SSH_CONFIGS):
        try:
            st = os.stat(os.path.expanduser(name))
            stamp.append(f"{name}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            stamp.append(f"{name}:-")
    digest = hashlib.sha256("\0".join(stamp).encode()).hexdigest()[:20]
    path = private_dir() / f"{digest}.sock"
    if len(str(path)) > MAX_SOCKET_PATH:
        raise MuxError(f"{path}: too long for a Unix socket")
    return path
