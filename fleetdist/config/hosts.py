"""Host patterns: `web[01-99]`, `db[1-3]`, `web[01-03,07]`, `rack[1-2]-node[1-4]`, `web*`.

Fabric's `-H` only splits on commas, so patterns are expanded here, everywhere
a host is named.  Zero padding follows the wider bound (`web[01-10]` gives
`web01`..`web10`).  A comma inside brackets belongs to the range list, a comma
outside separates patterns.  In a selection (`-H`, `-x`, `fleetdist hosts`),
`*` and `?` are shell globs matched against the inventory's host names
(brackets stay ranges); an inventory itself names hosts with ranges only.
`--limit KEY=VALUE` then narrows a selection by group or host variable.
Whatever selects nothing is an error, so a typo never shrinks a rollout.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from fleetdist.config.names import host_problem
from fleetdist.config.schema import Host
from fleetdist.errors import HostPatternError, UsageError

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
MAX_HOSTS = 100_000
GLOB = frozenset("*?")
MAX_GLOB_WORK = 10_000_000  # globs after range expansion x inventory hosts, matched one by one


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
    names = _expand(pattern)
    for name in names:
        if problem := host_problem(name):
            raise HostPatternError(f"host pattern {pattern!r}: {problem}")
    return names


def _expand(pattern: str) -> list[str]:
    """The ranges of one pattern expanded, each result not yet checked as a name."""
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
    return ["".join(combo) for combo in itertools.product(*pieces)]


def is_glob(pattern: str) -> bool:
    return not GLOB.isdisjoint(pattern)


def match_glob(
    pattern: str, known: Sequence[str], source: str = "inventory", flag: str = "hosts"
) -> list[str]:
    """The inventory hosts a glob such as `web*` or `db?[1-2]` matches, in inventory order.

    Ranges are expanded first; what is left of each glob must be a host name
    once its wildcards are filled in, and it must match at least one host.
    """
    globs = _expand(pattern)
    for glob in globs:
        if host_problem(glob.replace("*", "x").replace("?", "x")):
            raise HostPatternError(f"host pattern {pattern!r}: {glob!r} cannot match a host name")
    if len(globs) * max(1, len(known)) > MAX_GLOB_WORK:
        raise HostPatternError(
            f"host pattern {pattern!r}: too many globs to match; use fewer ranges"
        )
    names = [n for n in known if any(fnmatchcase(n, g) for g in globs)]
    if not names:
        raise HostPatternError(f"{source}: {flag}: {pattern!r} matches no host in the inventory")
    return names


def _names(
    pattern: str,
    known: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    source: str,
    flag: str = "hosts",
) -> list[str]:
    """What one pattern names: a group's hosts, a glob's matches, or the expanded names."""
    if pattern in groups:
        return list(groups[pattern])
    if is_glob(pattern):
        return match_glob(pattern, known, source, flag)
    return expand_pattern(pattern)


def select_hosts(
    patterns: Sequence[str],
    known: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    *,
    exclude: Sequence[str] = (),
    source: str = "inventory",
) -> list[str]:
    """Resolve patterns and group names against an inventory's hosts.

    A group name selects its hosts, a glob the hosts it matches (at least
    one); anything else must expand to hosts the inventory knows, so a typo
    never silently shrinks a rollout; likewise each `exclude` pattern must
    match a selected host, so a typo never widens one.
    """
    chosen: dict[str, None] = {}
    known_set = set(known)
    for text in patterns or list(known):
        for pattern in split_patterns(text):
            names = _names(pattern, known, groups, source)
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
            names = _names(pattern, known, groups, source, "-x/--exclude")
            if not any(n in chosen for n in names):
                raise HostPatternError(
                    f"{source}: -x/--exclude: {pattern!r} matches no selected host"
                )
            dropped.update(names)
    return [n for n in chosen if n not in dropped]


def limit_hosts(
    names: Sequence[str], hosts: Mapping[str, Host], limits: Sequence[str], source: str
) -> list[str]:
    """Narrow a selection with `--limit KEY=VALUE` (repeatable: every limit must hold).

    `group=NAME` keeps members of that group; any other key is a host
    variable (`role=web` keeps hosts whose merged vars say `role: web`).
    VALUE may be a glob (`role=web*`).  A limit that keeps no host is an
    error naming it, like a pattern that selects nothing.
    """
    chosen = list(names)
    for spec in limits:
        key, _, value = (part.strip() for part in spec.partition("="))
        if "=" not in spec or not key or not value:
            raise UsageError(f"--limit {spec!r}: expected KEY=VALUE, e.g. role=web or group=db")
        kept = [n for n in chosen if _has(hosts[n], key, value)]
        if not kept:
            raise HostPatternError(
                f"{source}: --limit {key}={value}: matches none of the {len(chosen)} selected"
                f" host(s)"
            )
        chosen = kept
    return chosen


def _has(host: Host, key: str, value: str) -> bool:
    if key == "group":
        return any(fnmatchcase(group, value) for group in host.groups)
    return key in host.vars and fnmatchcase(str(host.vars[key]), value)
