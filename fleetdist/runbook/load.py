"""Read `runbooks/NAME.yaml` (and a recipe's `around_batch`) into `model` values, strictly.

Like recipes, every problem is one `file: path.to.field: reason` line
(`config.fields.Fields`): unknown keys are refused, each step has exactly
one kind, names follow one grammar, durations are bounded, and every
`${...}` names a declared param or the host (see `subst.check`).  What can
only be known per host (a host var, the `on:` host) is checked when the
run is planned, before any host is touched.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fleetdist.config.fields import Fields, read_yaml
from fleetdist.errors import ConfigError, UsageError
from fleetdist.orchestrate.batches import BatchPlan, FailureBudget
from fleetdist.runbook import subst
from fleetdist.runbook.model import (
    KINDS,
    Body,
    Command,
    Deploy,
    Exec,
    Http,
    Kind,
    Local,
    Param,
    ParamType,
    Pause,
    Rollback,
    Runbook,
    StepSpec,
    Strategy,
    Template,
    Wait,
)
from fleetdist.runbook.params import checked

STEP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_SECONDS = 86400.0  # a day: any longer wait or timeout is a typo
TYPES: tuple[ParamType, ...] = ("str", "int", "bool")


def load_runbook(path: Path) -> Runbook:
    """Read and validate one runbook file."""
    source = str(path)
    f = Fields(read_yaml(path), source)
    params = _params(f)
    hosts = f.strings("hosts")
    strategy = _strategy(f.sub("strategy"))
    steps = _steps(f, "steps", params, host=True)
    if not steps:
        raise f.error("steps", "missing required field (a list of steps)")
    runbook = Runbook(
        source=source,
        name=path.stem,
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        description=f.text("description") or "",
        params=params,
        hosts=hosts,
        strategy=strategy,
        steps=steps,
    )
    f.done()
    return runbook


Around = tuple[tuple[StepSpec, ...], tuple[StepSpec, ...]]  # (before, after)


def load_around(data: Any, source: str, field: str) -> Around:
    """A recipe's `around_batch: {before: [...], after: [...]}`: steps of the same kinds
    (no deploy or rollback: they run inside one), referring to the host only."""
    f = Fields(data, source, field)
    before = _steps(f, "before", {}, host=True, inside_deploy=True)
    after = _steps(f, "after", {}, host=True, inside_deploy=True)
    f.done()
    return before, after


def duration(value: object, where: str, *, zero: bool = False) -> float:
    """Seconds from `1.5s`, `2m`, `250ms`, `1h` or a bare number of seconds, bounded."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a duration like 1.5s or 2m")
    match = _DURATION.fullmatch(str(value).strip())
    if not match:
        raise ConfigError(f"{where}: {value!r} is not a duration like 1.5s, 2m or 250ms")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_SECONDS or (seconds <= 0 and not zero):
        low = "0" if zero else "more than 0"
        raise ConfigError(f"{where}: {value!r} must be {low} and at most 24h")
    return seconds


# -- params -------------------------------------------------------------------


def _params(f: Fields) -> dict[str, Param]:
    sub = f.sub("params")
    out: dict[str, Param] = {}
    for name in list(sub.data):
        if not isinstance(name, str) or not subst.PARAM.fullmatch(name) or name == "host":
            raise sub.error(str(name), "param names are [a-z_][a-z0-9_]* and not 'host'")
        p = sub.sub(name)
        kind = p.text("type", "str")
        if kind not in TYPES:
            raise p.error("type", f"must be one of {', '.join(TYPES)}, got {kind!r}")
        pattern = p.text("pattern")
        if pattern is not None:
            if kind != "str":
                raise p.error("pattern", "only a str param can have a pattern")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise p.error("pattern", f"not a regular expression: {exc}") from None
        p.text("description")
        param = Param(name, kind, None, pattern)
        default = p.raw("default")
        if default is not None:
            param = Param(name, param.type, typed_default(param, default, p), pattern)
        p.done()
        out[name] = param
    sub.done()
    return out


def typed_default(param: Param, value: object, p: Fields) -> str:
    """A default as the text `--param` would give, checked as `--param` would check it."""
    wanted = {"str": str, "int": int, "bool": bool}[param.type]
    if isinstance(value, bool) is not (wanted is bool) or not isinstance(value, wanted):
        raise p.error("default", f"expected a {param.type}, got {type(value).__name__}")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    try:  # as `--param` (and `--resume`, which gives the run's values again) checks it
        return checked(param, text, "")
    except UsageError as exc:
        raise p.error("default", str(exc).removeprefix(": ")) from None


# -- strategy -----------------------------------------------------------------


def _strategy(f: Fields) -> Strategy:
    canary = f.integer("canary", 0, low=0, high=100_000) or 0
    batch = f.text("batch")
    try:
        batches = BatchPlan.parse(canary, batch)
    except ConfigError as exc:
        raise f.error("batch", str(exc).removeprefix("--batch: ")) from None
    pause = duration(f.raw("pause") or 0, f"{f.source}: {f.field('pause')}", zero=True)
    budget = f.text("max_failures")
    try:
        max_failures = FailureBudget.parse(budget)
    except ConfigError as exc:
        raise f.error("max_failures", str(exc).removeprefix("--max-fail: ")) from None
    parallel = f.integer("parallel", 10, low=1, high=1000) or 10
    f.done()
    return Strategy(batches, pause, max_failures, parallel)


# -- steps --------------------------------------------------------------------


def _steps(
    f: Fields, key: str, params: dict[str, Param], *, host: bool, inside_deploy: bool = False
) -> tuple[StepSpec, ...]:
    items = f.raw(key)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise f.error(key, "expected a list of steps")
    out: list[StepSpec] = []
    for i, item in enumerate(items):
        s = Fields(item, f.source, f"{f.field(key)}[{i}]")
        name = s.text("name", required=True) or ""
        if not STEP_NAME.fullmatch(name):
            raise s.error("name", f"{name!r}: use [a-z0-9][a-z0-9_-]*, at most 64 characters")
        if any(step.name == name for step in out):
            raise s.error("name", f"{name!r} is used by an earlier step")
        body = _body(s, params, host=host, inside_deploy=inside_deploy)
        undo = None
        if s.has("undo"):
            u = s.sub("undo")
            undo = _body(u, params, host=host, inside_deploy=inside_deploy)
            u.done()
        s.done()
        out.append(StepSpec(name, body, undo))
    return tuple(out)


def _body(s: Fields, params: dict[str, Param], *, host: bool, inside_deploy: bool) -> Body:
    """The one kind of a step (or undo), its `on` and `timeout`."""
    if True in s.data:  # YAML 1.1 reads the key `on` as the boolean true
        if "on" in s.data:
            raise s.error("on", "given twice")
        s.data["on"] = s.data.pop(True)
    given = [k for k in KINDS if s.has(k)]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        raise s.error("", f"give exactly one of {', '.join(KINDS)} (got {what})")
    kind_name = given[0]
    if inside_deploy and kind_name in ("deploy", "rollback"):
        raise s.error(kind_name, "around_batch steps run inside a deploy: no deploy or rollback")
    kind = _kind(s, kind_name, params, host=host)
    on = _template(s, "on", params, host=host)
    if on is not None and not (
        isinstance(kind, Exec) or (isinstance(kind, Http) and kind.origin == "host")
    ):
        raise s.error("on", "only exec steps and http steps `from: host` run on another host")
    timeout = None
    if s.has("timeout"):
        if not isinstance(kind, Exec | Local | Http):
            raise s.error(
                "timeout",
                "only exec, local and http steps take one (a deploy's scripts are bounded "
                "by the host's command_timeout)",
            )
        timeout = duration(s.raw("timeout"), f"{s.source}: {s.field('timeout')}")
    return Body(kind, on, timeout, f"{s.source}: {s.path}")


def _kind(s: Fields, name: str, params: dict[str, Param], *, host: bool) -> Kind:
    where = f"{s.source}: {s.field(name)}"
    if name in ("exec", "local"):
        command = _command(s, name, params, host=host)
        return Exec(command) if name == "exec" else Local(command)
    if name == "wait":
        return Wait(duration(s.raw(name), where, zero=True))
    if name == "pause":
        return Pause(_required(s, name, params, host=host))
    k = s.sub(name)
    kind: Kind
    if name == "deploy":
        kind = Deploy(_template(k, "recipe", params, host=False))
    elif name == "rollback":
        kind = Rollback(
            _template(k, "recipe", params, host=False), _template(k, "to", params, host=False)
        )
    else:
        kind = _http(k, params, host=host)
    k.done()
    return kind


def _http(k: Fields, params: dict[str, Param], *, host: bool) -> Http:
    origin = k.text("from", "controller")
    if origin not in ("controller", "host"):
        raise k.error("from", f"must be controller or host, got {origin!r}")
    return Http(
        url=_required(k, "url", params, host=host),
        status=k.integer("status", 200, low=100, high=599) or 200,
        body=_template(k, "body", params, host=host),
        retries=k.integer("retries", 0, low=0, high=1000) or 0,
        delay=duration(k.raw("delay") or 1, f"{k.source}: {k.field('delay')}", zero=True),
        timeout=duration(k.raw("timeout") or 5, f"{k.source}: {k.field('timeout')}"),
        origin="host" if origin == "host" else "controller",
    )


def _command(s: Fields, key: str, params: dict[str, Param], *, host: bool) -> Command:
    """An argv list (each item one argument), or `{shell: "..."}`."""
    value = s.raw(key)
    if isinstance(value, dict):
        c = s.sub(key)
        shell = _required(c, "shell", params, host=host)
        subst.contexts_of(shell)  # a reference the scanner cannot place is refused now
        c.done()
        return Command(shell=shell)
    if not isinstance(value, list) or not value:
        raise s.error(key, "expected an argv list, e.g. [systemctl, restart, app], or {shell: ...}")
    argv = []
    for i, item in enumerate(value):
        where = f"{s.source}: {s.field(key)}[{i}]"
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ConfigError(f"{where}: expected a string, got {type(item).__name__}")
        t = Template(str(item), where)
        subst.check(t, params, host=host)
        argv.append(t)
    if argv[0].text.lstrip().startswith("-") or not argv[0].text.strip():
        raise ConfigError(f"{argv[0].where}: the command must be a program, not empty or '-...'")
    return Command(argv=tuple(argv))


def _template(f: Fields, key: str, params: dict[str, Param], *, host: bool) -> Template | None:
    value = f.text(key)
    if value is None:
        return None
    t = Template(value, f"{f.source}: {f.field(key)}")
    subst.check(t, params, host=host)
    return t


def _required(f: Fields, key: str, params: dict[str, Param], *, host: bool) -> Template:
    t = _template(f, key, params, host=host)
    if t is None or not t.text.strip():
        raise f.error(key, "missing required field")
    return t
