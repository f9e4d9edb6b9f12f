"""Pick a transport per host: `local` hosts are directories here, `ssh` hosts go over Fabric."""

from __future__ import annotations

import threading

from fleetdist.config.schema import Host
from fleetdist.transport.base import Transport, TransportFactory
from fleetdist.transport.local import LocalTransport


def transport_factory(
    *, accept_new_host_keys: bool = False, max_connect: int = 10
) -> TransportFactory:
    """One factory for a whole run; the SSH side shares its known_hosts and handshake limit."""
    ssh: list[TransportFactory] = []
    guard = threading.Lock()  # workers race to the first SSH host; build one factory only

    def make(host: Host) -> Transport:
        if host.transport == "local":
            return LocalTransport(host)
        with guard:
            if not ssh:
                # Imported lazily: local-only runs never pay for paramiko's import.
                from fleetdist.transport.ssh import ssh_transport_factory

                ssh.append(
                    ssh_transport_factory(
                        accept_new_host_keys=accept_new_host_keys, max_connect=max_connect
                    )
                )
        return ssh[0](host)

    return make
