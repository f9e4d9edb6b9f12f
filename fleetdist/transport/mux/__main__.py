"""`python -m fleetdist.transport.mux SOCKET`: detach, then run the daemon.

The fork happens before Paramiko is imported, so the short-lived parent (the
process the starting run waits for) stays small: a run's own peak memory
should not include a second copy of the SSH stack.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    """Fork; the parent exits 0 at once (the starter waits for it), the child serves."""
    if len(argv) != 2:
        print("usage: python -m fleetdist.transport.mux SOCKET", file=sys.stderr)
        return 2
    if os.fork():
        os._exit(0)
    from fleetdist.transport.mux.daemon import serve_forever

    serve_forever(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
