"""Host patterns: `web[01-99]`, `db[1-3]`, `web[01-03,07]`, `rack[1-2]-node[1-4]`.

Fabric's `-H` only splits on commas, so patterns are expanded here, everywhere
a host is named.  Zero padding follows the wider bound (`web[01-10]` gives
`web01`..`web10`).  A comma inside brackets belongs to the range list, a comma
outside separates patterns.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

from fleetdist.config.names import host_problem
from fleetdist.errors import HostPatternError

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
MAX_HOSTS = 100_000


def split_patterns(text: str) -> list[str]:
    """Split a comma list of patterns, keeping commas inside brackets."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_range(pattern: str, body: str) -> list[str]:
    """The values of one `[...]`; its size is counted from the bounds before it is
    expanded, so `web[0-1000000000]` is refused at once instead of filling memory."""
    items: list[tuple[int, int, int]] = []
    for item in body.split(","):
        match = _RANGE.match(item.strip())
        if not match:
            raise HostPatternError(f"host pattern {pattern!r}: bad range {item.strip()!r}")
        lo_text, hi_text = match.group(1), match.group(2) or match.group(1)
        lo, hi = int(lo_text), int(hi_text)
        if lo > hi:
            raise HostPatternError(
                f"host pattern {pattern!r}: range {item.strip()!r} runs backwards"
            )
        padded = any(len(t) > 1 and t.startswith("0") for t in (lo_text, hi_text))
        items.append((lo, hi, max(len(lo_text), len(hi_text)) if padded else 0))
    _check_size(pattern, sum(hi - lo + 1 for lo, hi, _ in items))
    return [str(n).zfill(width) for lo, hi, width in items for n in range(lo, hi + 1)]


def _check_size(pattern: str, total: int) -> None:
    if total > MAX_HOSTS:
        raise HostPatternError(
            f"host pattern {pattern!r}: expands to {total} hosts (max {MAX_HOSTS})"
        )


def expand_pattern(pattern: str) -> list[str]:
    """Expand one pattern (no top-level commas) into host names, in order."""
    pieces: list[list[str]] = []
    rest = pattern
    while rest:
        open_at = rest.find("[")
        close_at = rest.find("]")
        if open_at == -1:
            if close_at != -1:
                raise HostPatternError(f"host pattern {pattern!r}: unbalanced ']'")
            pieces.append([rest])
            break
        close_at = rest.find("]", open_at)
        if close_at == -1 or "[" in rest[open_at + 1 : close_at]:
            raise HostPatternError(f"host pattern {pattern!r}: unbalanced '['")
        if "]" in rest[:open_at]:
            raise HostPatternError(f"host pattern {pattern!r}: unbalanced ']'")
        pieces.append([rest[:open_at]])
        pieces.append(_expand_range(pattern, rest[open_at + 1 : close_at]))
        rest = rest[close_at + 1 :]
    _check_size(pattern, math.prod(len(piece) for piece in pieces))
    names = ["".join(combo) for combo in itertools.product(*pieces)]
    for name in names:
        if problem := host_problem(name):
            raise HostPatternError(f"host pattern {pattern!r}: {problem}")
    return names


def select_hosts(
    patterns: Sequence[str],
    known: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    *,
    exclude: Sequence[str] = (),
    source: str = "inventory",
) -> list[str]:
    """Resolve patterns and group names against an inventory's hosts.

    A group name selects its hosts; anything else must expand to hosts the
    inventory knows, so a typo never silently shrinks a rollout; likewise each
    `exclude` pattern must match a selected host, so a typo never widens one.
    """
    chosen: dict[str, None] = {}
    known_set = set(known)
    for text in patterns or list(known):
        for pattern in split_patterns(text):
            names = list(groups[pattern]) if pattern in groups else expand_pattern(pattern)
            missing = [n for n in names if n not in known_set]
            if missing:
                raise HostPatternError(
                    f"{source}: hosts: {', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''} not in inventory"
                )
            for name in names:
                chosen.setdefault(name)
    dropped: set[str] = set()
    for text in exclude:
        for pattern in split_patterns(text):
            names = list(groups[pattern]) if pattern in groups else expand_pattern(pattern)
            if not any(n in chosen for n in names):
                raise HostPatternError(
                    f"{source}: -x/--exclude: {pattern!r} matches no selected host"
                )
            dropped.update(names)
    return [n for n in chosen if n not in dropped]
