"""known_hosts handling for the SSH transport: strict by default.

Fabric installs Paramiko's AutoAddPolicy, which trusts any key a host presents;
fleetdist replaces it with `HostKeyPolicy`, which refuses unknown keys unless
the operator asked for trust-on-first-use, and always refuses a changed key.

A known_hosts file is parsed once per process and shared by every connection
(`known_hosts_for`), so a fleet of a thousand hosts does not parse it a
thousand times; it is re-read only if something else rewrote it meanwhile.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from paramiko.client import MissingHostKeyPolicy, SSHClient
from paramiko.hostkeys import HostKeys
from paramiko.pkey import PKey

from fleetdist.errors import HostKeyError

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

_Signature = tuple[int, int] | None


def host_key_name(hostname: str, port: int) -> str:
    """The name OpenSSH and Paramiko file a host under: `host` or `[host]:port`."""
    return hostname if port == 22 else f"[{hostname}]:{port}"


def _signature(path: Path) -> _Signature:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


class KnownHosts:
    """One parsed known_hosts file; every method is thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys = HostKeys()
        self.signature: _Signature = None
        self.reload()

    def reload(self) -> None:
        """Parse the file again (a missing file is an empty one)."""
        keys = HostKeys()
        try:
            signature = _signature(self.path)
            if signature is not None:
                keys.load(str(self.path))
        except (OSError, ValueError) as exc:
            raise HostKeyError(f"{self.path}: cannot read known_hosts: {exc}") from exc
        with self._lock:
            self._keys, self.signature = keys, signature

    def lookup(self, name: str) -> dict[str, PKey]:
        """Known keys of `name` by key type (hashed entries match too)."""
        with self._lock:
            found = self._keys.lookup(name)
            return dict(found) if found is not None else {}

    def install(self, client: SSHClient, name: str) -> None:
        """Give `client` what it needs to check `name`: only that host's entries."""
        for keytype, key in self.lookup(name).items():
            client.get_host_keys().add(name, keytype, key)

    def add_new(self, host: str, name: str, key: PKey) -> None:
        """Record a first-seen key; refuse if `name` already has another one.

        The check and the append happen under one lock, so many hosts sharing
        an address (or racing threads) record a key once and never disagree.
        """
        with self._lock:
            known = self._keys.lookup(name)
            if known is not None:
                if known.get(key.get_name()) == key:
                    return
                raise HostKeyError(changed_key_message(host, name, self.path))
            self._append(f"{name} {key.get_name()} {key.get_base64()}\n")
            self._keys.add(name, key.get_name(), key)
            self.signature = _signature(self.path)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode())


_cache: dict[Path, KnownHosts] = {}
_cache_lock = threading.Lock()


def known_hosts_for(path: str | None) -> KnownHosts:
    """The process-wide parsed known_hosts at `path` (default ~/.ssh/known_hosts)."""
    resolved = Path(os.path.expanduser(path or DEFAULT_KNOWN_HOSTS)).resolve()
    with _cache_lock:
        store = _cache.get(resolved)
        if store is None:
            store = _cache[resolved] = KnownHosts(resolved)
        elif store.signature != _signature(resolved):
            store.reload()
        return store


def changed_key_message(host: str, name: str, path: Path) -> str:
    """The one-line error for a key that differs from the recorded one."""
    return (
        f"host {host}: host key for {name} has CHANGED (differs from {path}); "
        "refusing to connect: remove the stale entry only if the change is expected"
    )


@dataclass(frozen=True)
class HostKeyPolicy(MissingHostKeyPolicy):
    """Paramiko calls this only for a host with no known key of any type.

    Strict (the default) refuses; `accept_new` records the key in the
    known_hosts file, like OpenSSH's `StrictHostKeyChecking=accept-new`.
    Changed keys never reach a policy: Paramiko raises BadHostKeyException.
    """

    store: KnownHosts
    host: str
    accept_new: bool = False

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        if not self.accept_new:
            raise HostKeyError(
                f"host {self.host}: unknown host key for {hostname} (not in known_hosts; "
                "pass --accept-new-host-keys to trust on first use)"
            )
        self.store.add_new(self.host, hostname, key)
