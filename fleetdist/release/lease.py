"""The per-app lease on a host: a directory made with `mkdir`, the atomic test-and-set.

`<root>/.fleetdist/lock/` holds `run` (the run id), `holder` (who, where,
which pid) and `expires` (epoch seconds).  Every step renews it; a crashed
controller's lease simply runs out, or is taken over at once when the
controller can prove its holder process is dead (LockSpec.takeover).  These
are fragments over `$R` (see `shell.root`), spliced into the step scripts so
taking and renewing the lease costs no round trip of its own.
"""

# Shell snippets read better on one line than split across Python strings.
# ruff: noqa: E501

from __future__ import annotations

from dataclasses import dataclass

from fleetdist.release.command import Sh, assign, raw
from fleetdist.release.shell import append_ledger

LOCK_HELD = 75
LEASE_SECONDS = 900  # longer than any single step; each step renews it


@dataclass(frozen=True)
class LockSpec:
    """Who asks for the per-app lease on a host, and for which rollout."""

    run_id: str
    holder: str
    lease: int = LEASE_SECONDS
    wait: float = 0.0
    takeover: str = ""  # a run id whose live-looking lease is known to be stale


def take(spec: LockSpec) -> list[Sh]:
    """Take (or renew) the per-app lease; exit LOCK_HELD naming the holder if it is live.

    `mkdir` is the atomic test-and-set.  A lease past its expiry, or one held
    by this same run (a resumed rollout), is moved aside with one atomic
    `mv`, so two controllers can never both take over a stale lease.
    """
    return [
        assign("RUN", spec.run_id),
        assign("HOLDER", spec.holder),
        assign("LEASE", str(spec.lease)),
        assign("WAIT", str(int(spec.wait))),
        assign("TAKEOVER", spec.takeover),
        raw(
            'L="$R/.fleetdist/lock"\n'
            '[ -d "$R/.fleetdist/incoming" ] && [ -d "$R/releases" ] || mkdir -p "$R/.fleetdist/incoming" "$R/releases"\n'
            "now=$(date +%s); deadline=$((now + WAIT))"
        ),
        raw(
            'while ! mkdir "$L" 2>/dev/null; do\n'
            '  exp=0; held=""; now=$(date +%s)\n'
            '  [ -f "$L/expires" ] && read -r exp < "$L/expires" || true\n'
            '  [ -f "$L/run" ] && read -r held < "$L/run" || true\n'
            '  if [ "$held" = "$RUN" ] || [ "$now" -ge "$exp" ] || { [ -n "$TAKEOVER" ] && [ "$held" = "$TAKEOVER" ]; }; then\n'
            '    mv "$L" "$L.stale.$$" 2>/dev/null && rm -rf "$L.stale.$$"; continue\n'
            "  fi\n"
            '  if [ "$now" -ge "$deadline" ]; then\n'
            '    printf \'locked by %s until %s\\n\' "$(cat "$L/holder" 2>/dev/null || echo unknown)"'
            ' "$(date -u -d "@$exp" +%H:%M:%SZ 2>/dev/null || echo "$exp")" >&2\n'
            f"    exit {LOCK_HELD}\n"
            "  fi\n"
            "  sleep 1\n"
            "done"
        ),
        raw('printf \'%s\\n\' "$RUN" > "$L/run"; printf \'%s\\n\' "$HOLDER" > "$L/holder"'),
        raw('echo $((now + LEASE)) > "$L/expires"'),
    ]


def renew(spec: LockSpec) -> list[Sh]:
    """Refuse to touch the host if our lease was taken over; renew it otherwise.

    Shell builtins (`read`) where they do: every external command is a fork
    and exec on the host, and a hundred hosts pay for each one.
    """
    return [
        assign("RUN", spec.run_id),
        assign("LEASE", str(spec.lease)),
        raw('L="$R/.fleetdist/lock"; held=""'),
        raw(
            '[ -f "$L/run" ] && read -r held < "$L/run" || true\n'
            'if [ "$held" != "$RUN" ]; then\n'
            '  echo "lost the lock (another rollout took over an expired lease)" >&2'
            f"; exit {LOCK_HELD}\n"
            "fi"
        ),
        raw('echo $(($(date +%s) + LEASE)) > "$L/expires"'),
    ]


def give_back(spec: LockSpec) -> list[Sh]:
    """Release the lease, but only if it is still ours."""
    return [
        assign("RUN", spec.run_id),
        raw(
            'L="$R/.fleetdist/lock"\n'
            'held=""; [ -f "$L/run" ] && read -r held < "$L/run" || true\n'
            'if [ "$held" = "$RUN" ]; then mv "$L" "$L.done.$$" && rm -rf "$L.done.$$"; fi'
        ),
    ]


def break_lock(ledger_line: str) -> list[Sh]:
    """Break the lease whoever holds it, and say so in the ledger."""
    return [
        raw('L="$R/.fleetdist/lock"; [ -d "$L" ] || exit 0'),
        raw('mv "$L" "$L.forced.$$" && rm -rf "$L.forced.$$"'),
        append_ledger(ledger_line),
    ]
