"""One host's steps, resolved: exactly what each step will send, run or check.

`plan_host` resolves every `${...}` of every step (and undo) for one host,
picks the `on:` host, builds the command a host is sent (`release.command`
quotes it, through `become` when the inventory says so) and checks what can
only be checked per host, all before anything runs.  A run executes these
values (`kinds`) and `--dry-run` prints them (`render`), so the two cannot
differ.  Deploy and rollback actions name their recipe; their scripts come
from `deploying.RecipeRun`, for a run and a dry run alike.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from fleetdist.config.names import RELEASE_ID, check_release_id
from fleetdist.config.schema import Host, Inventory
from fleetdist.errors import ConfigError
from fleetdist.release.command import Sh, as_user, assign, cmd, raw, script, user_shell
from fleetdist.release.shlib import source
from fleetdist.runbook import subst
from fleetdist.runbook.model import (
    Body,
    Command,
    Deploy,
    Exec,
    Http,
    Local,
    Pause,
    StepSpec,
    Template,
    Wait,
)
from fleetdist.runbook.subst import Values


@dataclass(frozen=True)
class Remote:
    """A command run on `host` (the step's own, or its `on:` host)."""

    host: Host
    sh: Sh

    @property
    def sent(self) -> Sh:
        """What the transport is given: through `sudo -n` if the host says `become`."""
        return as_user(self.sh, self.host.become_user) if self.host.become else self.sh


@dataclass(frozen=True)
class LocalRun:
    """An argv run on the controller (a `shell:` string is `sh -c STRING`)."""

    argv: tuple[str, ...]


@dataclass(frozen=True)
class HttpGet:
    """A GET from the controller, tried until the answer is as expected."""

    url: str
    status: int
    body: str | None
    tries: int
    delay: float
    timeout: float


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Prompt:
    message: str


@dataclass(frozen=True)
class DeployRelease:
    recipe: str


@dataclass(frozen=True)
class RollbackRelease:
    recipe: str
    to: str | None = None


Action = Remote | LocalRun | HttpGet | Sleep | Prompt | DeployRelease | RollbackRelease


@dataclass(frozen=True)
class Planned:
    """One step of one host: its action and timeout, and its undo's."""

    name: str
    action: Action
    timeout: float | None = None
    undo: Action | None = None
    undo_timeout: float | None = None


@dataclass(frozen=True)
class Scope:
    """What every host's plan is resolved against: params, the inventory, recipes.

    `recipe` is the recipe a `deploy` without `recipe:` deploys (`-r`, or
    the only one); `rollback_recipe` the one a `rollback` without `recipe:`
    flips (the one the runbook deploys, if just one, else `recipe`).
    """

    params: Mapping[str, str]
    inventory: Inventory
    recipe: str | None = None
    rollback_recipe: str | None = None


def plan_host(steps: tuple[StepSpec, ...], host: Host, scope: Scope) -> list[Planned]:
    """Every step of `host`, resolved; a problem names the field and the host."""
    values = Values(scope.params, host)
    out = []
    for spec in steps:
        undo = spec.undo
        out.append(
            Planned(
                spec.name,
                _action(spec.body, host, values, scope),
                spec.body.timeout,
                _action(undo, host, values, scope) if undo else None,
                undo.timeout if undo else None,
            )
        )
    return out


def _action(body: Body, host: Host, values: Values, scope: Scope) -> Action:
    kind = body.kind
    if isinstance(kind, Exec):
        return Remote(_on(body, host, values, scope), _command(kind.command, values))
    if isinstance(kind, Local):
        command = kind.command
        if command.shell is not None:
            return LocalRun(("sh", "-c", subst.shell(command.shell, values)))
        return LocalRun(tuple(subst.text(t, values) for t in command.argv))
    if isinstance(kind, Http):
        return _http(kind, body, host, values, scope)
    if isinstance(kind, Wait):
        return Sleep(kind.seconds)
    if isinstance(kind, Pause):
        return Prompt(subst.text(kind.message, values))
    if isinstance(kind, Deploy):
        return DeployRelease(recipe_key(kind.recipe, values, scope.recipe, body.where))
    to = subst.text(kind.to, values) if kind.to else None
    if to is not None:
        check_release_id(to, f"{kind.to.where if kind.to else body.where} (host {host.name})")
    key = recipe_key(kind.recipe, values, scope.rollback_recipe, body.where)
    return RollbackRelease(key, to)


def recipe_key(t: Template | None, values: Values, fallback: str | None, where: str) -> str:
    """The recipe a deploy or rollback step names (a file in recipes/), else `fallback`."""
    if t is None:
        if fallback is None:
            raise ConfigError(f"{where}: name the recipe (recipe: NAME) or pass -r/--recipe")
        return fallback
    name = subst.text(t, values)
    if not RELEASE_ID.fullmatch(name) or ".." in name:
        raise ConfigError(f"{t.where}: {name!r} is not a recipe name (a file in recipes/)")
    return name


def _on(body: Body, host: Host, values: Values, scope: Scope) -> Host:
    """The host the step runs on: `on:` resolved, which must be in the inventory."""
    if body.on is None:
        return host
    name = subst.text(body.on, values)
    found = scope.inventory.hosts.get(name)
    if found is None:
        raise ConfigError(
            f"{body.on.where}: {name!r} (for host {host.name}) is not a host of "
            f"{scope.inventory.source}"
        )
    return found


def _command(command: Command, values: Values) -> Sh:
    """An argv (each value one argument, quoted once) or a shell string (values quoted in place)."""
    if command.shell is not None:
        return user_shell(subst.shell(command.shell, values))
    return cmd(*(subst.text(t, values) for t in command.argv))


def _http(kind: Http, body: Body, host: Host, values: Values, scope: Scope) -> Action:
    url = subst.url(kind.url, values)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (a port that is not a number raises here, not at run time)
    except ValueError:
        raise ConfigError(
            f"{kind.url.where} (host {host.name}): {url!r} is not an http(s) URL (bad port)"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{kind.url.where} (host {host.name}): {url!r} is not an http(s) URL")
    expect = subst.text(kind.body, values) if kind.body else None
    get = HttpGet(url, kind.status, expect, kind.retries + 1, kind.delay, kind.timeout)
    if kind.origin == "controller":
        return get
    return Remote(_on(body, host, values, scope), http_script(get))


def http_script(get: HttpGet) -> Sh:
    """The same check run on a host (`sh/http.sh`: curl, else python3)."""
    return script(
        [
            assign("URL", get.url),
            assign("STATUS", str(get.status)),
            assign("BODY", get.body or ""),
            assign("TRIES", str(get.tries)),
            assign("DELAY", f"{get.delay:g}"),
            assign("TIMEOUT", f"{get.timeout:g}"),
            raw(source("http", "fleetdist.runbook")),
            raw("http_check"),
        ]
    )


def other_host(action: Action, host: str) -> str | None:
    """The other host a step of `host` runs on (`on:`), if any."""
    if isinstance(action, Remote) and action.host.name != host:
        return action.host.name
    return None


def render(action: Action) -> str:
    """What `--dry-run` prints for an action that is not a deploy or rollback."""
    if isinstance(action, Remote):
        return f"# on {action.host.name}:\n{action.sent.shown}"
    if isinstance(action, LocalRun):
        return f"# on the controller:\n{shlex.join(action.argv)}"
    if isinstance(action, HttpGet):
        return f"# from the controller: {describe_get(action)}"
    if isinstance(action, Sleep):
        return f"# wait {action.seconds:g}s"
    if isinstance(action, Prompt):
        return f"# pause: {action.message} (Enter at a terminal; --yes goes on)"
    raise TypeError(action)


def describe_get(get: HttpGet) -> str:
    want = f"status {get.status}" + (f" and a body containing {get.body!r}" if get.body else "")
    return (
        f"GET {get.url}: want {want}; {get.tries} tr{'y' if get.tries == 1 else 'ies'} "
        f"{get.delay:g}s apart, {get.timeout:g}s each"
    )
