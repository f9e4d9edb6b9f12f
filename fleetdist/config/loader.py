"""Load recipes and inventories from YAML into the frozen models of `schema.py`.

Inventory layers merge in one documented order, later wins:
    defaults  <  groups (in file order)  <  the host's own entry
for connection settings and for `vars` alike.  `{VAR}` in connection
settings is expanded per host (see `env.py` for the lookup order) and the
name `{host}` is always the inventory name of the host being resolved.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from fleetdist.config.buildspec import check_formats, parse_build
from fleetdist.config.env import expand, fill_placeholders
from fleetdist.config.fields import Fields, read_yaml
from fleetdist.config.hosts import MAX_HOSTS, expand_pattern
from fleetdist.config.names import (
    RELEASE_ID_RULE,
    USER_NAME,
    app_problem,
    env_var_problem,
    release_id_problem,
    shared_path_problem,
)
from fleetdist.config.pyproject import (
    DEFAULT_EXCLUDES,
    TOOL_TABLE,
    ProjectMeta,
    project_meta,
    tool_table,
)
from fleetdist.config.schema import Hooks, Host, Inventory, Recipe, Shared, Source
from fleetdist.errors import ConfigError, HostPatternError

PATH_KEYS = ("identity_file", "known_hosts", "local_root")


def load_recipe(path: Path) -> Recipe:
    """Read and validate a recipe; `source.path` is resolved against the recipe's folder.

    A recipe is a YAML file, or the `[tool.fleetdist]` table of a
    pyproject.toml (`source` then defaults to that file's directory).
    Either may leave `app` and `version` to the source's pyproject `[project]`.
    """
    source = str(path)
    toml = path.suffix == ".toml"
    f = Fields(tool_table(path), source, TOOL_TABLE) if toml else Fields(read_yaml(path), source)
    # What the recipe itself says is checked first, so its errors come before any other.
    app = _app(f, None) if f.has("app") else ""
    version, version_from = _version(f, None) if f.has("version") else ("", "recipe")
    src = f.raw("source")
    if isinstance(src, str):
        src = {"path": src}
    if src is None and toml:
        src = {"path": "."}
    s = Fields(src, source, f.field("source"))
    if src is None:
        raise f.error("source", "missing required field")
    source_dir = (path.parent / (s.text("path", required=True) or "")).resolve()
    exclude = s.strings("exclude") if s.has("exclude") or not toml else DEFAULT_EXCLUDES
    sources = Source(source_dir, s.strings("include") or ("**",), exclude)
    s.done()
    meta = None if app and f.has("version") else project_meta(source_dir)
    app = app or _app(f, meta)
    if not f.has("version"):
        version, version_from = _version(f, meta)
    hooks_f = f.sub("hooks")
    hooks = Hooks(hooks_f.strings("before_activate"), hooks_f.strings("after_activate"))
    hooks_f.done()
    shared = _shared(f)
    env = _env(f)
    secret_env = f.strings("secret_env")
    for i, name in enumerate(secret_env):
        if name not in env:
            raise f.error(f"secret_env[{i}]", f"{name!r} is not a key of env")
    build = f.raw("build")
    if build is not None and not isinstance(build, dict):
        raise f.error("build", "expected a mapping")
    parse_build(build, source, path.parent, source_dir)  # validated now, parsed again by builders
    around = f.raw("around_batch")
    if around is not None and not isinstance(around, dict):
        raise f.error("around_batch", "expected a mapping: {before: [steps], after: [steps]}")
    formats = f.strings("formats") or ("tar.gz",)
    check_formats(formats, source)
    recipe = Recipe(
        source_file=source,
        app=app,
        version=version,
        source=sources,
        deploy_root=f.text("deploy_root", required=True) or "",
        keep=f.integer("keep", 5, low=2, high=1000) or 5,
        test=f.strings("test"),
        hooks=hooks,
        shared=shared,
        healthcheck=f.text("healthcheck"),
        env=env,
        secret_env=secret_env,
        formats=formats,
        build=build or {},
        version_from=version_from,
        around_batch=around or {},
    )
    f.done()
    return recipe


def _shared(f: Fields) -> Shared:
    """`shared: {dirs: [...], files: [...]}`: relative paths, each at most once."""
    sub = f.sub("shared")
    lists = {key: sub.strings(key) for key in ("dirs", "files")}
    sub.done()
    seen: list[str] = []
    for key, paths in lists.items():
        for i, path in enumerate(paths):
            if problem := shared_path_problem(path):
                raise f.error(f"shared.{key}[{i}]", f"{path!r}: {problem}")
            for other in seen:
                if path == other:
                    raise f.error(f"shared.{key}[{i}]", f"{path!r} is listed twice")
                # One inside the other: linking the inner one would go through the
                # outer link and replace the shared data itself.
                if path.startswith(other + "/") or other.startswith(path + "/"):
                    raise f.error(f"shared.{key}[{i}]", f"{path!r} overlaps {other!r}")
            seen.append(path)
    return Shared(lists["dirs"], lists["files"])


def _app(f: Fields, meta: ProjectMeta | None) -> str:
    """The recipe's `app`, else the pyproject's `[project].name` (PEP 503-normalised)."""
    if not f.has("app") and meta is not None and meta.name:
        if problem := app_problem(meta.name):
            raise ConfigError(f"{meta.source}: project.name: {meta.name!r}: {problem}")
        return meta.name
    app = f.text("app", required=True) or ""
    if problem := app_problem(app):
        raise f.error("app", problem)
    return app


VersionFrom = Literal["recipe", "pyproject", "wheel"]


def _version(f: Fields, meta: ProjectMeta | None) -> tuple[str, VersionFrom]:
    """The version and where it comes from (see `Recipe.version_from`)."""
    if f.has("version") or meta is None:
        return _written_version(f), "recipe"
    if meta.version:
        if problem := release_id_problem(meta.version):
            raise ConfigError(f"{meta.source}: project.version: {problem}")
        return meta.version, "pyproject"
    if meta.dynamic_version:
        return "", "wheel"
    raise f.error("version", f"missing required field (and {meta.source} has no project.version)")


def _written_version(f: Fields) -> str:
    """The version as written: YAML would read an unquoted `1.10` as the number 1.1.

    It may hold `{VAR}`, which `session.resolve_version` resolves (and checks
    again) only for the verbs that build; the text around it is checked now.
    """
    value = f.raw("version")
    if value is not None and not isinstance(value, str):
        raise f.error(
            "version",
            f"YAML read the {type(value).__name__} {value!r}: quote the version as written,"
            ' e.g. version: "1.10"',
        )
    version = f.text("version", required=True) or ""
    if release_id_problem(fill_placeholders(version, "0")):
        raise f.error("version", f"{version!r} cannot be a release id ({RELEASE_ID_RULE})")
    return version


def _env(f: Fields) -> dict[str, str]:
    """`env:` names are exported into the host scripts: identifiers that are not fleetdist's."""
    env = f.scalars("env")
    for name in env:
        if problem := env_var_problem(name):
            raise f.sub("env").error(name, problem)
    return env


def _connection(f: Fields) -> dict[str, Any]:
    """Read the connection settings present in one layer (absent keys are omitted)."""
    out: dict[str, Any] = {}
    if f.has("transport"):
        transport = f.text("transport")
        if transport not in ("local", "ssh"):
            raise f.error("transport", f"must be 'local' or 'ssh', got {transport!r}")
        out["transport"] = transport
    for key in ("hostname", "user", "identity_file", "known_hosts", "jump_host", "local_root"):
        if f.has(key):
            out[key] = f.text(key)
    if f.has("port"):
        out["port"] = f.integer("port", None, low=1, high=65535)
    for key in ("connect_timeout", "command_timeout"):
        if f.has(key):
            out[key] = f.number(key, 0.0)
    for key in ("become", "forward_agent"):
        if f.has(key):
            out[key] = f.boolean(key)
    if f.has("become_user"):
        user = f.text("become_user") or ""
        if not USER_NAME.fullmatch(user):
            raise f.error("become_user", f"{user!r} is not a user name")
        out["become_user"] = user
    return out


class _Expander:
    """Expands one inventory's host patterns within one budget for the whole file,
    so many patterns cannot add up to what a single pattern may not."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, pattern: str) -> list[str]:
        names = expand_pattern(pattern)
        self.total += len(names)
        if self.total > MAX_HOSTS:
            raise HostPatternError(
                f"host pattern {pattern!r}: the inventory names more than {MAX_HOSTS} hosts"
            )
        return names


class _Layer:
    """One layer of settings: connection keys, vars, and where it was read."""

    def __init__(self, f: Fields) -> None:
        self.field = f.path
        self.connection = _connection(f)
        self.vars = f.scalars("vars")


def load_inventory(path: Path, env: Mapping[str, str], process_env: Mapping[str, str]) -> Inventory:
    """Read, merge and validate an inventory; every host comes out fully resolved."""
    source = str(path)
    f = Fields(read_yaml(path), source)
    confirm = _confirm(f)
    defaults_f = f.sub("defaults")
    defaults = _Layer(defaults_f)
    defaults_f.done()

    expand = _Expander()
    groups: dict[str, tuple[str, ...]] = {}
    group_layers: dict[str, _Layer] = {}
    groups_f = f.sub("groups")
    for name in list(groups_f.data):
        g = groups_f.sub(str(name))
        try:
            members = [h for p in g.strings("hosts") for h in expand(p)]
        except HostPatternError as exc:
            raise g.error("hosts", str(exc)) from None
        groups[str(name)] = tuple(dict.fromkeys(members))
        group_layers[str(name)] = _Layer(g)
        g.done()
    groups_f.done()

    host_layers: dict[str, _Layer] = {}
    hosts_f = f.sub("hosts")
    for pattern in list(hosts_f.data):
        h = hosts_f.sub(str(pattern))
        layer = _Layer(h)
        h.done()
        try:
            names = expand(str(pattern))
        except HostPatternError as exc:
            raise hosts_f.error(str(pattern), str(exc)) from None
        for name in names:
            host_layers[name] = layer
    hosts_f.done()
    f.done()

    ordered = list(dict.fromkeys([*host_layers, *(n for m in groups.values() for n in m)]))
    if not ordered:
        raise ConfigError.at(source, "hosts", "the inventory defines no hosts")
    hosts = {
        name: _resolve_host(
            name, source, defaults, groups, group_layers, host_layers.get(name), env, process_env
        )
        for name in ordered
    }
    return Inventory(source=source, hosts=hosts, groups=groups, confirm=confirm)


def _confirm(f: Fields) -> bool:
    """`confirm: true`: changing these hosts (deploy, rollback) needs `--yes` or a typed yes."""
    value = f.raw("confirm")
    if value is not None and not isinstance(value, bool):
        raise f.error("confirm", f"expected true or false, got {value!r}")
    return bool(value)


def _resolve_host(
    name: str,
    source: str,
    defaults: _Layer,
    groups: dict[str, tuple[str, ...]],
    group_layers: dict[str, _Layer],
    own: _Layer | None,
    env: Mapping[str, str],
    process_env: Mapping[str, str],
) -> Host:
    member_of = tuple(g for g, members in groups.items() if name in members)
    layers = [defaults, *(group_layers[g] for g in member_of), *([own] if own else [])]
    settings: dict[str, Any] = {}
    host_vars: dict[str, str] = {}
    origin: dict[str, str] = {}
    for layer in layers:
        settings.update(layer.connection)
        host_vars.update(layer.vars)
        origin.update({k: layer.field for k in layer.connection})
    lookup = ChainMap({"host": name}, host_vars, dict(process_env), dict(env))
    for key in (*PATH_KEYS, "hostname", "user", "jump_host"):
        if isinstance(settings.get(key), str):
            settings[key] = expand(settings[key], lookup, where=f"{source}: {origin[key]}.{key}")
    resolved_vars = {
        k: expand(v, lookup, where=f"{source}: host {name}: vars.{k}") for k, v in host_vars.items()
    }
    if settings.get("transport", "ssh") == "local":
        if not settings.get("local_root"):
            raise ConfigError.at(source, f"host {name}", "transport 'local' needs local_root")
        settings["local_root"] = os.path.abspath(settings["local_root"])
    return Host(name=name, groups=member_of, vars=resolved_vars, **settings)
