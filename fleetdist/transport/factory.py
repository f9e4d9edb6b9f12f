"""Pick a transport per host: `local` hosts are directories here, `ssh` hosts go over Fabric."""

from __future__ import annotations

import contextlib
import resource
import sys
import threading

from fleetdist.config.schema import Host
from fleetdist.transport.base import Transport, TransportFactory
from fleetdist.transport.local import LocalTransport


def transport_factory(
    *,
    accept_new_host_keys: bool = False,
    max_connect: int = 10,
    persist: float = 0.0,
    read_only: bool = False,
) -> TransportFactory:
    """One factory for a whole run; the SSH side shares its known_hosts and handshake limit.

    `read_only`: the run only looks (status, history, a dry run's probe), so a
    local host's root is not created.

    With `persist` > 0, SSH hosts go through the mux daemon, which keeps each
    connection open that many seconds after the run for the next one.  If the
    daemon cannot run here, the run connects directly instead (and says so).
    """
    ssh: list[TransportFactory] = []
    guard = threading.Lock()  # workers race to the first SSH host; build one factory only

    def make(host: Host) -> Transport:
        if host.transport == "local":
            return LocalTransport(host, read_only=read_only)
        with guard:
            if not ssh:
                ssh.append(_ssh_factory(accept_new_host_keys, max_connect, persist))
        return ssh[0](host)

    return make


def raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one, as sshd and most daemons do.

    A rollout holds a socket per host for its whole run (and the mux daemon a
    second one per host), so the common soft limit of 1024 would cap a fleet
    near a thousand hosts with "Too many open files".
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        # ValueError/OSError: the kernel's own ceiling (nr_open) is lower; keep what we have.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _ssh_factory(accept_new: bool, max_connect: int, persist: float) -> TransportFactory:
    raise_open_files_limit()
    # Imported lazily: local-only runs never pay for paramiko's import, and
    # runs through the mux daemon never import it at all.
    if persist > 0:
        from fleetdist.transport.mux.client import MuxFactory

        try:
            return MuxFactory(
                accept_new_host_keys=accept_new, max_connect=max_connect, persist=persist
            )
        except OSError as exc:
            # A one-line notice, not a failure: the run itself is unaffected.
            print(f"fleetdist: warning: connecting without --persist: {exc}", file=sys.stderr)
    from fleetdist.transport.ssh import ssh_transport_factory

    return ssh_transport_factory(accept_new_host_keys=accept_new, max_connect=max_connect)
