"""Fragments every host script shares: the app root variable and the ledger append.

Scripts assign the app root to `$R` first and build every path from it, so
the only quoting of a path happens once, in `assign`.
"""

from __future__ import annotations

from fleetdist.release.command import Sh, assign, cmd
from fleetdist.release.layout import ReleaseLayout


def root(layout: ReleaseLayout) -> Sh:
    return assign("R", layout.root)


def append_ledger(line: str) -> Sh:
    """Append one JSON line (rendered on the controller) to the host's ledger."""
    return cmd("printf", "%s\\n", line).append_to('"$R/.fleetdist/ledger.jsonl"')
