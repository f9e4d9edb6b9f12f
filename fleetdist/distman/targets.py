"""From dist.json plus `-t/--source/--dest` to concrete targets: one source, one link each.

Pure apart from globbing the repo: every `{VAR}` is resolved and every `%N`
filled here, before anything is written, so a bad token in the last target
stops the run before the first one is touched.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.distman import DistError, DistFile, Options, Step, TargetSpec
from fleetdist.distman.env import resolve
from fleetdist.release.distlayout import DistLayout

_GROUP = re.compile(r"%\d+")


@dataclass(frozen=True)
class Target:
    """One source deployed to one destination link."""

    name: str  # the dist.json key (shared by a wildcard's matches)
    shown: str  # the source as messages and `.dist` files show it
    source: Path  # absolute
    layout: DistLayout
    steps: tuple[Step, ...]
    match: str  # commit | content
    ignore_missing: bool

    @property
    def kind(self) -> str:
        """distman's one-letter type: f(ile), d(irectory), l(ink); ? when missing."""
        if self.source.is_symlink():
            return "l"
        if self.source.is_dir():
            return "d"
        return "f" if self.source.exists() else "?"


@dataclass(frozen=True)
class Request:
    """What the command line asked for."""

    location: str  # as typed: shown sources are relative to it
    patterns: Sequence[str] | None
    source: str | None
    dest: str | None
    ignore_missing: bool
    compat_pipeline: bool = False


def _shown(location: str, source: str) -> str:
    path = source.replace("\\", "/")
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(location, path.lstrip("./") if path != "." else path))


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", "([^/]+)") + "$")


def _fill(destination: str, groups: Sequence[str], *, required: bool) -> str:
    for i, group in enumerate(groups, start=1):
        if f"%{i}" not in destination:
            if required:
                raise DistError(f"Destination template '{destination}' does not contain %{i}")
            continue
        destination = destination.replace(f"%{i}", group)
    if _GROUP.search(destination):
        raise DistError(f"Unresolved wildcard placeholders: {destination}")
    return destination


def _layout(destination: str, values: Mapping[str, str], where: str) -> DistLayout:
    path = os.path.abspath(resolve(destination, values, where).replace("\\", "/"))
    if path == "/" or not os.path.basename(path):
        raise DistError(f"{where}: destination {path!r} has no name")
    return DistLayout(path)


def _expand(
    spec: TargetSpec, req: Request, values: Mapping[str, str], warn: Callable[[str], None]
) -> list[tuple[str, str]]:
    """(shown source, destination template) pairs for one dist.json target."""
    pattern = _shown(req.location, spec.source)
    if req.source is not None:
        wanted = _shown(req.location, req.source)
        match = _regex(pattern).match(wanted) if "*" in pattern else None
        if "*" not in pattern and wanted != pattern:
            return []
        if "*" in pattern and match is None:
            return []
        groups = match.groups() if match else ()
        return [(wanted, _fill(req.dest or spec.destination, groups, required=req.dest is None))]
    if "*" not in pattern:
        return [(pattern, req.dest or spec.destination)]
    pairs = []
    for path in sorted(glob.glob(pattern)):
        match = _regex(pattern).match(path.replace("\\", "/"))
        if match is None:
            continue
        template = req.dest or spec.destination
        missing = [i for i in range(1, len(match.groups()) + 1) if f"%{i}" not in template]
        if missing:
            warn(
                f"Destination template '{template}' does not contain a placeholder "
                f"for group {missing[0]}."
            )
            continue
        pairs.append((path, _fill(template, match.groups(), required=True)))
    return pairs


def plan_targets(
    dist: DistFile | None,
    req: Request,
    values: Mapping[str, str],
    warn: Callable[[str], None],
) -> list[Target]:
    """Every target the request selects, fully resolved; [] when none matched."""
    root = Path(req.location).resolve()
    if dist is None:  # ad hoc: `--source X --dest Y` without a dist.json
        assert req.source is not None and req.dest is not None
        shown = _shown(req.location, req.source)
        layout = _layout(req.dest, values, "--dest")
        return [
            Target(
                "cli",
                shown,
                Path(os.path.abspath(shown)),
                layout,
                (),
                "content",
                req.ignore_missing,
            )
        ]
    targets = []
    for spec in dist.targets:
        if req.patterns is not None and not any(
            fnmatch.fnmatch(spec.name, p) for p in req.patterns
        ):
            continue
        options = spec.options.over(dist.options).over(Options("commit", req.ignore_missing))
        steps = tuple(dist.steps_for(spec, compat_pipeline=req.compat_pipeline))
        for shown, template in _expand(spec, req, values, warn):
            layout = _layout(template, values, f"<dest> for {spec.name}")
            rel = os.path.relpath(os.path.abspath(shown), os.path.abspath(req.location))
            source = Path(os.path.normpath(root / rel))
            assert options.match is not None and options.ignore_missing is not None
            targets.append(
                Target(
                    spec.name, shown, source, layout, steps, options.match, options.ignore_missing
                )
            )
    if req.source is not None and req.dest is not None and len(targets) > 1:
        raise DistError("Cannot use --dest with multiple source matches")
    _one_source_per_destination(targets)
    return targets


def _one_source_per_destination(targets: Sequence[Target]) -> None:
    """Two sources aimed at one link would race for its version numbers: refuse up front."""
    seen: dict[str, Target] = {}
    for t in targets:
        first = seen.setdefault(t.layout.dest, t)
        if first is not t:
            raise DistError(
                f"Targets {first.name} ('{first.shown}') and {t.name} ('{t.shown}') "
                f"both deploy to {t.layout.dest}"
            )
