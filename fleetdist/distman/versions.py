"""A target's versions on disk: list, number, match, choose for rollback, prune.

Pure decisions over `Version` lists plus the one directory listing; the
arithmetic lives here so `dist`, `-n/-c/--reset` and `--delete` agree.
"""

from __future__ import annotations

import os

from fleetdist.config.distman import DistError
from fleetdist.release.distlayout import DistLayout, Version


def listed(layout: DistLayout) -> list[Version]:
    """This target's versions, oldest first (temporary copies and other targets excluded)."""
    try:
        names = os.listdir(layout.versions)
    except FileNotFoundError:
        return []
    found = (layout.parse(n) for n in names if not n.startswith("."))
    return sorted(v for v in found if v is not None)


def linked(layout: DistLayout) -> str | None:
    """The version filename the destination link points at, or None."""
    try:
        text = os.readlink(layout.dest)
    except OSError:
        return None
    return os.path.basename(text)


def next_number(versions: list[Version]) -> int:
    """One above the highest number ever used here (never a duplicate, whatever MAX_VERSIONS)."""
    return versions[-1].number + 1 if versions else 0


def by_commit(versions: list[Version], commit: str) -> Version | None:
    """The newest clean version made from `commit` (a prefix of at least 4 hex digits)."""
    commit = commit.lower()
    hits = [
        v
        for v in versions
        if v.commit and not v.dirty and (v.commit.startswith(commit) or commit.startswith(v.commit))
    ]
    return hits[-1] if hits else None


def by_number(versions: list[Version], number: int) -> Version | None:
    """`-n N`: version N; a negative N counts back from the newest (-1: the one before it)."""
    if number < 0:
        index = len(versions) - 1 + number
        return versions[index] if 0 <= index < len(versions) else None
    return next((v for v in versions if v.number == number), None)


def window(versions: list[Version], size: int) -> list[Version]:
    """The newest `size` versions: what `match: content` compares with (MAX_VERSIONS)."""
    return versions[-size:] if size > 0 else []


def prunable(
    versions: list[Version], keep: int, live: str | None, previous: str | None = None
) -> list[Version]:
    """Versions beyond the newest `keep`; never the linked one, the one numbered just
    before it, nor `previous` (what the link pointed at until now)."""
    if keep <= 0:
        return []
    spared = {v.filename for v in versions[-keep:]} | {previous or ""}
    if live is not None:
        spared.add(live)
        numbers = [v for v in versions if v.filename == live]
        earlier = [v for v in versions if numbers and v.number < numbers[0].number]
        if earlier:
            spared.add(earlier[-1].filename)
    return [v for v in versions if v.filename not in spared]


def resolve_choice(
    layout: DistLayout, number: int | None, commit: str | None, source: str
) -> Version:
    """The version `-n`/`-c` names for this target, or a DistError saying why not."""
    versions = listed(layout)
    if not versions:
        raise DistError(f"Target {layout.name}: No versioned files found for {source}")
    if commit is not None:
        found = by_commit(versions, commit)
        if found is None:
            raise DistError(f"Target commit {commit} not found for {source}")
        return found
    assert number is not None
    found = by_number(versions, number)
    if found is None:
        raise DistError(f"Target version {number} not found for {source}")
    return found
