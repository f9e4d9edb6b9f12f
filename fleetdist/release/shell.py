"""Fragments every host script shares: the app root variable and the ledger append.

Scripts assign the app root to `$R` first and build every path from it, so
the only quoting of a path happens once, in `assign`.
"""

from __future__ import annotations

from fleetdist.release.command import Sh, assign, cmd, raw
from fleetdist.release.layout import ReleaseLayout


def root(layout: ReleaseLayout) -> Sh:
    return assign("R", layout.root)


def append_ledger(line: str) -> Sh:
    """Append one JSON line (rendered on the controller) to the host's ledger."""
    return cmd("printf", "%s\\n", line).append_to('"$R/.fleetdist/ledger.jsonl"')


def append_ledger_filled(pieces: tuple[str, str, str], from_var: str, to_var: str) -> list[Sh]:
    """Append a `ledger.template` line with "$from_var" and "$to_var" as its from/to.

    Release ids never hold control characters, so escaping `\\` and `"`
    makes them valid JSON strings; an empty value is JSON null.  `jstr` sets
    "$J" rather than printing, so no subshell is forked for a plain id.
    """
    head, middle, tail = pieces
    return [
        raw(
            # sed only for ids that need escaping: every fork counts on a hundred hosts.
            'jstr() { case "$1" in "") J=null;; *[\\\\\\"]*) J="\\"$(printf \'%s\' "$1" | '
            'sed \'s/[\\\\"]/\\\\&/g\')\\"";; *) J="\\"$1\\"";; esac; }'
        ),
        assign("LA", head),
        assign("LB", middle),
        assign("LC", tail),
        raw(
            f'jstr "${from_var}"; JF=$J; jstr "${to_var}"\n'
            'printf \'%s%s%s%s%s\\n\' "$LA" "$JF" "$LB" "$J" "$LC" >> "$R/.fleetdist/ledger.jsonl"'
        ),
    ]
