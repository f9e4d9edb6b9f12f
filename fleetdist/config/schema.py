"""Frozen, validated models of recipes and inventories.

`loader.py` turns YAML into these once; every later module trusts them and
never re-checks a field.  Paths here are already `{VAR}`-expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TransportName = Literal["local", "ssh"]


@dataclass(frozen=True)
class Host:
    """One target host with its merged connection settings and variables.

    `name` is the inventory name (what patterns match and reports show);
    `hostname` is what SSH connects to (defaults to `name`, and may be an
    ssh_config alias).  `local_root` is only set for the local transport: the
    directory that stands in for `/` on that host.
    """

    name: str
    transport: TransportName = "ssh"
    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    jump_host: str | None = None
    connect_timeout: float = 10.0
    command_timeout: float = 900.0
    local_root: str | None = None
    become: bool = False  # run every script through `sudo -n -u become_user`
    become_user: str = "root"
    forward_agent: bool = False  # forward the controller's ssh-agent to the scripts
    groups: tuple[str, ...] = ()
    vars: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def address(self) -> str:
        return self.hostname or self.name


@dataclass(frozen=True)
class Inventory:
    """Hosts by name (in file order) and the host names of each group.

    `confirm`: a deploy or rollback to these hosts must be confirmed (`--yes`).
    """

    source: str
    hosts: dict[str, Host]
    groups: dict[str, tuple[str, ...]]
    confirm: bool = False


@dataclass(frozen=True)
class Source:
    """What goes into the app's archive: a directory filtered by globs."""

    path: Path
    include: tuple[str, ...] = ("**",)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hooks:
    """Shell commands run in the new release around activation."""

    before_activate: tuple[str, ...] = ()
    after_activate: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shared:
    """Paths kept across releases under `<root>/shared/`, linked into each release
    (Capistrano's linked_dirs/linked_files, Deployer's shared_dirs/shared_files)."""

    dirs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One app: what to package, where it lives on a host, how it is checked.

    `deploy_root` may still hold `{VAR}` placeholders: it is resolved per host,
    because host variables can take part in it.  `version_from` says where
    the version came from: the recipe ("recipe", may hold `{VAR}`), a static
    pyproject `[project].version` ("pyproject"), or nowhere yet ("wheel": a
    dynamic version, read from the built wheel's metadata by the verbs that
    build; `version` is "" until then).
    """

    source_file: str
    app: str
    version: str
    source: Source
    deploy_root: str
    keep: int = 5
    test: tuple[str, ...] = ()
    hooks: Hooks = Hooks()
    shared: Shared = Shared()
    healthcheck: str | None = None
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    secret_env: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("tar.gz",)
    build: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    version_from: Literal["recipe", "pyproject", "wheel"] = "recipe"
    # `around_batch: {before: [...], after: [...]}` as written: runbook steps, validated
    # into `runbook.model` values by `session.load` (config does not know step kinds)
    around_batch: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
