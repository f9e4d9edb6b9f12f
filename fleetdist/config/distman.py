"""dist.json, distman's file format, read with the same strict field checks as recipes.

distman 0.8.4 reads the file with `json.load` and looks at a few keys; a typo
is ignored and a wrong type is a traceback later.  Here every field is
checked once, up front, and a problem is one line naming
`dist.json: path.to.field: reason`.  Exit code 1, not 2: distman exits 1 for
a bad dist.json and scripts around it test for that.

What fleetdist adds over distman: the `order` key of a pipeline step (which
distman documents but rejects), the global pipeline applies to every
target (distman applies it only to targets with their own `pipeline` key;
`DistFile.compat_pipeline` keeps that for those who rely on it), and a
top-level `fleetdist` section (`{"test": [...]}`: the commands `fleetdist
dist --hosts` runs on each host in the new versions before any link moves),
which distman 0.8.4 ignores like any key it does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.config.fields import Fields
from fleetdist.errors import ConfigError, ExitCode, FleetdistError

FILENAME = "dist.json"
SUPPORTED_VERSION = 1
MATCHES = ("commit", "content")
STEP_KEYS = ("func", "script", "options", "env", "order")


class DistError(FleetdistError):
    """A dist or cache run cannot go ahead; exit 1, as distman."""

    exit_code = ExitCode.FAILED


class DistFileError(DistError):
    """dist.json (or distman.env) is missing, malformed or wrong."""


@dataclass(frozen=True)
class Step:
    """One pipeline step: a dotted callable (`func`) or shell commands (`script`)."""

    name: str
    func: str | None = None
    script: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    order: int = 0


@dataclass(frozen=True)
class Options:
    """`options`: None means "not said here", so a target's own value wins over the global."""

    match: str | None = None
    ignore_missing: bool | None = None

    def over(self, base: Options) -> Options:
        return Options(
            self.match if self.match is not None else base.match,
            self.ignore_missing if self.ignore_missing is not None else base.ignore_missing,
        )


@dataclass(frozen=True)
class TargetSpec:
    """A target as written: `source` may hold `*`, `destination` `{VAR}` and `%N`."""

    name: str
    source: str
    destination: str
    pipeline: tuple[Step, ...] | None  # None: the target has no `pipeline` key
    options: Options


@dataclass(frozen=True)
class DistFile:
    path: Path
    author: str | None
    pipeline: tuple[Step, ...]
    options: Options
    targets: tuple[TargetSpec, ...]
    tests: tuple[str, ...] = ()  # `fleetdist.test`: in-place tests of `dist --hosts`

    def steps_for(self, target: TargetSpec, *, compat_pipeline: bool = False) -> list[Step]:
        """Global steps, then the target's (same name replaces), sorted by `order` (stable).

        `compat_pipeline` reproduces distman 0.8.4: no steps at all for a target
        without its own `pipeline` key.
        """
        if target.pipeline is None and compat_pipeline:
            return []
        merged = {s.name: s for s in self.pipeline}
        merged.update({s.name: s for s in target.pipeline or ()})
        return sorted(merged.values(), key=lambda s: s.order)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_dist_file(path: Path) -> DistFile:
    """Parse and validate `path`; every problem is a DistFileError naming the field."""
    if not path.is_file():
        raise DistFileError(f"{path} does not exist")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DistFileError(f"{path}: failed to parse dist file: {exc}") from None
    return parse(data, str(path), path)


def parse(data: Any, source: str, path: Path) -> DistFile:
    try:
        top = Fields(data, source)
        version = top.integer("version", SUPPORTED_VERSION, low=0, high=1_000_000)
        if version is not None and version > SUPPORTED_VERSION:
            raise top.error(
                "version", f"newer than supported version: {version} (current {SUPPORTED_VERSION})"
            )
        author = top.text("author")
        pipeline = _pipeline(top.sub("pipeline"))
        options = _options(top.sub("options"))
        targets = _targets(top.sub("targets"))
        ours = top.sub("fleetdist")
        tests = ours.strings("test")
        ours.done()
        top.done()
    except DistFileError:
        raise
    except ConfigError as exc:
        raise DistFileError(str(exc)) from None
    return DistFile(path, author, pipeline, options, targets, tests)


def _options(f: Fields) -> Options:
    match = f.text("match")
    if match is not None and match not in MATCHES:
        raise f.error("match", f"must be one of {', '.join(MATCHES)}, got {match!r}")
    ignore = f.raw("ignore_missing")
    if ignore is not None and not isinstance(ignore, bool):
        raise f.error("ignore_missing", "expected true or false")
    f.done()
    return Options(match, ignore)


def _pipeline(f: Fields) -> tuple[Step, ...]:
    steps = []
    for name in list(f.data):
        s = f.sub(str(name))
        func, script = s.text("func"), s.strings("script")
        if (func is None) == (not script):
            raise s.error("", "needs exactly one of 'func' or 'script'")
        options = s.sub("options").data
        s.raw("options")
        env = s.scalars("env")
        order = s.integer("order", 0, low=-1_000_000, high=1_000_000) or 0
        s.done()
        steps.append(Step(str(name), func, script, dict(options), env, order))
    return tuple(steps)


def _targets(f: Fields) -> tuple[TargetSpec, ...]:
    targets = []
    for name in list(f.data):
        t = f.sub(str(name))
        source = t.text("source", required=True)
        destination = t.text("destination", required=True)
        pipeline = _pipeline(t.sub("pipeline")) if t.has("pipeline") else None
        options = _options(t.sub("options"))
        t.done()
        assert source is not None and destination is not None
        targets.append(TargetSpec(str(name), source, destination, pipeline, options))
    if not targets:
        raise f.error("", "no targets")
    return tuple(targets)
