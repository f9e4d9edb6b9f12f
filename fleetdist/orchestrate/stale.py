"""Spot leases whose holder is provably dead, so a crashed run does not block for minutes.

A lease names its holder as `user@controller pid=N run=ID`.  When that
controller is this machine and process N no longer exists, the lease is
stale whatever its expiry says; any other holder is respected until expiry.
"""

from __future__ import annotations

import os
import re
import socket

_HOLDER = re.compile(r"locked by \S+@(?P<host>\S+) pid=(?P<pid>\d+) run=(?P<run>\S+)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_run(message: str) -> str | None:
    """The run id of a lease held by a dead process on this controller, if `message` names one."""
    match = _HOLDER.search(message)
    if not match or match["host"] != socket.gethostname():
        return None
    return None if _alive(int(match["pid"])) else match["run"]
