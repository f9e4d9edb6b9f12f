"""What a host's dist scripts told the controller: parsed from their protocol lines.

The scripts (`sh/dist.sh`) print only names that pass `config.names`'
dist-name grammar, on their protocol channel; these parsers check every
name again and ignore any line that does not parse, so no file name or
program output on a host is ever taken for a record.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdist.config.names import dist_name_problem
from fleetdist.release.facts import is_release_id


@dataclass(frozen=True)
class TargetFacts:
    """What one target has on a host: its versions (filenames) and its link."""

    versions: tuple[str, ...] = ()
    linked: str | None = None  # the version the link points at
    elsewhere: bool = False  # a link, but not to versions/<a version name>
    blocked: bool = False  # the destination exists and is not a link


def parse_facts(stdout: str, count: int) -> list[TargetFacts]:
    """The `dist_facts` records of `count` targets; lines that do not parse are ignored."""
    versions: list[list[str]] = [[] for _ in range(count)]
    linked: list[str | None] = [None] * count
    elsewhere, blocked = [False] * count, [False] * count
    for line in stdout.splitlines():
        fields = line.split(" ")
        if not fields or fields[0] not in ("@@dv", "@@dl", "@@df"):
            continue
        if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) >= count:
            continue
        k = int(fields[1])
        name = fields[2] if len(fields) == 3 else ""
        if fields[0] == "@@df" and len(fields) == 2:
            blocked[k] = True
        elif fields[0] == "@@dl" and name == "?":
            elsewhere[k] = True
        elif name and dist_name_problem(name) is None and fields[0] == "@@dv":
            versions[k].append(name)
        elif name and dist_name_problem(name) is None:
            linked[k] = name
    return [
        TargetFacts(tuple(v), linked[k], elsewhere[k], blocked[k]) for k, v in enumerate(versions)
    ]


def parse_matches(stdout: str) -> dict[int, str]:
    """Slot -> the existing version the host found equal to it (`@@dmatch SLOT NAME`)."""
    found = {}
    for line in stdout.splitlines():
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != "@@dmatch" or not fields[1].isdigit():
            continue
        if dist_name_problem(fields[2]) is None:
            found[int(fields[1])] = fields[2]
    return found


def parse_recovered(stdout: str) -> list[str]:
    """What `dist_recover` undid, as messages for the journal."""
    found = []
    for line in stdout.splitlines():
        fields = line.split(" ")
        if len(fields) == 2 and fields[0] == "@@drecovered":
            what = f" to {fields[1]}" if is_release_id(fields[1]) else ""
            found.append(f"undid the unconfirmed dist switch{what}: its links are back")
    return found


def parse_cache(stdout: str) -> str | None:
    """What `dist_cache` did: skipped, fresh, stale or "copied N" (None: it never said)."""
    for line in stdout.splitlines():
        fields = line.split(" ")
        if fields[:2] == ["@@cache", "copied"] and len(fields) == 3 and fields[2].isdigit():
            return f"copied {fields[2]}"
        if (
            len(fields) == 2
            and fields[0] == "@@cache"
            and fields[1] in ("skipped", "fresh", "stale")
        ):
            return fields[1]
    return None
