"""What a host told the controller about an app: parsed from the `facts` records.

The records come from `sh/facts.sh`.  The host prints only names that pass
the release-id grammar, and this parser checks them again, so a directory
or file on the host whose name looks like a protocol line is never taken
for one (see `config.names`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdist.config.names import release_id_problem
from fleetdist.release.layout import MARKER


def is_release_id(value: str) -> bool:
    """The grammar of `config.names`, which `is_id` in sh/lib.sh checks on the host too."""
    return release_id_problem(value) is None


@dataclass(frozen=True)
class Pending:
    """A flip a script made and never confirmed (it died between flip and checks)."""

    run: str
    action: str
    from_release: str | None
    to_release: str


@dataclass(frozen=True)
class Facts:
    """What a host has: the live release, the previous one, staged and tested ones.

    `releases` is newest first, as (release id, staged-at epoch seconds).
    `foreign` is true when `current` exists but points at no staged release.
    """

    current: str | None = None
    previous: str | None = None
    releases: tuple[tuple[str, float], ...] = ()
    lock: str | None = None
    tested: frozenset[str] = frozenset()
    pending: Pending | None = None
    foreign: bool = False

    @property
    def release_ids(self) -> list[str]:
        return [rid for rid, _ in self.releases]


def _id(value: str) -> str | None:
    return value if is_release_id(value) else None


def _pending(rest: str) -> Pending | None:
    fields = rest.split()
    if len(fields) < 4 or not is_release_id(fields[3]):
        return None
    return Pending(fields[0], fields[1], _id(fields[2]), fields[3])


def parse_facts(stdout: str) -> Facts:
    """Read the `facts` records back (newest release first); other lines are ignored."""
    current = previous = lock = None
    foreign = False
    pending = None
    tested: set[str] = set()
    releases: list[tuple[str, float]] = []
    for line in stdout.splitlines():
        if not line.startswith("@@"):
            continue  # not a record: only fleetdist writes to the protocol channel
        kind, _, rest = line[2:].partition(" ")
        if kind == "previous":
            previous = _id(rest)
        elif kind == "lock":
            lock = rest or None
        elif kind == "current":
            current, foreign = _id(rest), _id(rest) is None
        elif kind == "tested" and is_release_id(rest):
            tested.add(rest)
        elif kind == "pending":
            pending = _pending(rest)
        elif kind == "release":
            staged = _release(rest)
            if staged:
                releases.append(staged)
    releases.sort(key=lambda item: (-item[1], item[0]))
    return Facts(current, previous, tuple(releases), lock, frozenset(tested), pending, foreign)


def _release(rest: str) -> tuple[str, float] | None:
    """`EPOCH releases/ID/MARKER` -> (ID, EPOCH), or None for anything else."""
    epoch, _, path = rest.partition(" ")
    rid = path.removeprefix("releases/").removesuffix(f"/{MARKER}")
    if not is_release_id(rid) or path != f"releases/{rid}/{MARKER}":
        return None
    try:
        return rid, float(epoch)
    except ValueError:
        return None


def parse_target(stdout: str) -> str:
    """The `@@target ID` a rollback script printed ("" if none or not a release id)."""
    for line in stdout.splitlines():
        if line.startswith("@@target "):
            return line.removeprefix("@@target ") if is_release_id(line[9:]) else ""
    return ""


# Lines a script prints as it gets past each stage (see `steps`): the other half of
# the protocol, read here too, so one module knows every line a host may print.
MARKERS = frozenset({"@@send", "@@received", "@@staged", "@@unchanged"})


def parse_markers(stdout: str) -> frozenset[str]:
    """The stage markers a script printed, each a whole line."""
    return frozenset(line for line in stdout.splitlines() if line in MARKERS)


def parse_recoveries(stdout: str) -> list[str]:
    """The flips `recover` undid (a dead script left them unconfirmed), as "TO -> FROM"."""
    found = []
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "@@recovered" and is_release_id(fields[1]):
            back = fields[2] if is_release_id(fields[2]) else "nothing"
            found.append(f"undid the unconfirmed flip to {fields[1]}, back to {back}")
    return found


# The first line a script run through `become` prints (see `command.as_user`):
# without it, sudo never started the script.
BECAME = "@@became"
