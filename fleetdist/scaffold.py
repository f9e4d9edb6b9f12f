"""`fleetdist init [DIR]`: a commented recipe, a local fleet and env files for an existing app.

What it writes into DIR (the app's own directory, which becomes the project):

- `recipes/<app>.yaml`: the app's source is DIR itself (`source: ..`)
  minus what builds and deploys leave there; `app` and `version` come from
  `pyproject.toml` `[project]` when it has them (the recipe then leaves them
  out and keeps following the pyproject), else the directory's name and
  0.1.0; the tests it finds (pytest or unittest) as `test:`; a healthcheck
  placeholder that always passes;
- `inventories/local.yaml`: the embedded local fleet, three hosts that are
  directories under `.fleet/`, so the recipe deploys as it is;
- `env/{default,prod,dev}.env` when DIR has no env files.

Nothing that exists is overwritten without `force`: an existing recipe is
an error (exit 2); an existing inventory or env file is kept and listed.
The project's code is only read as text: nothing of it is run or imported.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fleetdist.config.names import app_problem
from fleetdist.config.pyproject import DEFAULT_EXCLUDES, ProjectMeta, normalise, project_meta
from fleetdist.errors import ConfigError

DEFAULT_VERSION = "0.1.0"
TEST_DIRS = ("tests", "test")


@dataclass
class Written:
    """What `init` did: files written, files kept as they were, and the commands to run next."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def app_name(directory: Path, meta: ProjectMeta | None) -> str:
    """The pyproject's name, else the directory's, squeezed into the app-name grammar."""
    if meta is not None and meta.name and not app_problem(meta.name):
        return meta.name
    name = re.sub(r"[^a-z0-9._-]+", "-", normalise(directory.resolve().name)).strip("-._")
    return name[:64] or "app"


def _test_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for sub in TEST_DIRS:
        found += sorted((directory / sub).rglob("test_*.py"))
        found += sorted((directory / sub).rglob("*_test.py"))
    return found


def _uses_pytest(directory: Path, files: list[Path]) -> bool:
    """pytest configured or imported anywhere a reader would look, as text."""
    if (directory / "pytest.ini").is_file() or (directory / "conftest.py").is_file():
        return True
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file() and "[tool.pytest" in pyproject.read_text(errors="replace"):
        return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        cfg = configparser.ConfigParser(interpolation=None)
        try:
            cfg.read(directory / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if cfg.has_section(section):
            return True
    pattern = re.compile(r"^\s*(import pytest|from pytest import)", re.MULTILINE)
    return any(pattern.search(f.read_text(errors="replace")) for f in files)


def detect_tests(directory: Path) -> list[str]:
    """The `test:` commands for the tests found: pytest, unittest, or none."""
    files = _test_files(directory)
    prefix = "PYTHONPATH=src " if (directory / "src").is_dir() else ""
    if _uses_pytest(directory, files):
        return [f"{prefix}python3 -m pytest -q -p no:cacheprovider"]
    if not files:
        return []
    start = next(sub for sub in TEST_DIRS if (directory / sub).is_dir())
    top = " -t ." if (directory / start / "__init__.py").is_file() else ""
    return [f"{prefix}python3 -m unittest discover -s {start}{top} -q"]


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's escaping is valid YAML)."""
    return json.dumps(text)


def recipe_text(app: str, meta: ProjectMeta | None, tests: list[str]) -> str:
    """The commented recipe; every key is described in README.md, "Recipe reference"."""
    lines = [f"# fleetdist recipe for {app}, written by `fleetdist init`.", ""]
    if meta is not None and meta.name == app:
        lines.append(f"# app: {app}  (from pyproject.toml [project].name; set it here to override)")
    else:
        lines.append(f"app: {app}")
    if meta is not None and meta.version:
        lines.append(f"# version: {meta.version}  (from pyproject.toml [project].version)")
    elif meta is not None and meta.dynamic_version:
        lines.append("# version: dynamic in pyproject.toml: read from the built wheel's metadata")
    else:
        lines.append(f'version: "{DEFAULT_VERSION}"           # quoted; may use {{VAR}}')
    lines += [
        "source:",
        "  path: ..                      # the app's directory (this file is in recipes/)",
        '  include: ["**"]',
        "  # a leading / anchors a glob at the app's directory",
        "  exclude: [" + ", ".join(_quoted(p) for p in DEFAULT_EXCLUDES) + "]",
        "# Where the app lives on each host; {DEPLOY_BASE} comes from env/*.env.",
        f'deploy_root: "{{DEPLOY_BASE}}/{app}"',
        "keep: 5                         # releases kept per host",
        "# Run inside the new release on every host; it goes live only if all pass.",
    ]
    if tests:
        lines += ["test:"] + [f"  - {_quoted(t)}" for t in tests]
        if "pytest" in tests[0]:
            lines.append("  # (hosts need pytest for this: install it there, or use a venv build)")
    else:
        lines += ["test: []                        # no tests found; e.g. python3 -m unittest"]
    lines += [
        "hooks:",
        "  before_activate: []           # in the new release, before the flip",
        "  after_activate: []            # in current, after the flip (e.g. a service restart)",
        "# Runs in `current` after the flip; a failure flips back.  A placeholder:",
        "# replace it with a real check, e.g. curl -fsS http://localhost:8000/health",
        'healthcheck: "true"',
        "env: {}                         # exported to tests, hooks and healthcheck",
        "formats: [tar.gz]               # what `fleetdist build` makes by default",
        "",
    ]
    return "\n".join(lines)


INVENTORY = """\
# The local fleet `fleetdist init` set up: three "hosts" that are directories
# on this machine.  Each host's local_root stands in for its "/", so
# deploy_root /srv/apps/APP lands in $FLEET_ROOT/web01/srv/apps/APP.
# FLEET_ROOT comes from the environment, else env/<env>.env (default .fleet,
# relative to the directory fleetdist runs in).  See README.md, "Inventory
# reference", for SSH hosts.
defaults:
  transport: local
  local_root: "{FLEET_ROOT}/{host}"
  command_timeout: 300
groups:
  web:
    hosts: ["web[01-03]"]
"""

ENV_FILES = {
    "default.env": """\
#!/usr/bin/env envstack
# Values shared by every environment; prod.env and dev.env include this file.
all: &all
  DEPLOY_BASE: /srv/apps
linux:
  <<: *all
darwin:
  <<: *all
""",
    **{
        f"{name}.env": f"""\
#!/usr/bin/env envstack
include: [default]
all: &all
  ENV: {name}
  DEPLOY_BASE: /srv/apps{suffix}
  FLEET_ROOT: ${{FLEET_ROOT:=.fleet}}
linux:
  <<: *all
darwin:
  <<: *all
"""
        for name, suffix in (("prod", ""), ("dev", "-dev"))
    },
}


def init(directory: Path, *, force: bool = False) -> Written:
    """Write the recipe, the local inventory and env files into `directory` (see module doc)."""
    if not directory.is_dir():
        raise ConfigError(f"init: {directory} is not a directory")
    meta = project_meta(directory)
    app = app_name(directory, meta)
    recipe = directory / "recipes" / f"{app}.yaml"
    if recipe.exists() and not force:
        raise ConfigError(f"init: {recipe} exists (--force overwrites it)")
    files = {recipe: recipe_text(app, meta, detect_tests(directory))}
    files[directory / "inventories" / "local.yaml"] = INVENTORY
    env = directory / "env"
    if force or not list(env.glob("*.env")):
        files.update({env / name: text for name, text in ENV_FILES.items()})
    done = Written()
    for path, text in files.items():
        if path.exists() and not force:
            done.kept.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        done.written.append(path)
    here = directory.resolve() == Path.cwd().resolve()
    cd = "" if here else f"cd {shlex.quote(str(directory))} && "
    done.next_steps = [
        f"{cd}fleetdist plan      # what each local host would run",
        "fleetdist deploy    # build, test in place on web01..web03 (under .fleet/), go live",
        "fleetdist status    # current and previous release per host",
    ]
    return done
