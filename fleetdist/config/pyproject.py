"""What a recipe may take from the app's `pyproject.toml`: PEP 621 metadata, or all of it.

`[project]` gives the app name (normalised as PEP 503 does, so `My_App`
becomes `my-app`) and the version, when they are static.  A version listed
in `dynamic` is never worked out here by running or importing the project:
the build reads it from the wheel metadata its own build backend writes
(`fleetdist.builders.wheel.dynamic_version`).

`[tool.fleetdist]` may hold the whole recipe, so a project needs no
separate file; its `source` defaults to the pyproject's own directory minus
what builds and deploys leave there (DEFAULT_EXCLUDES).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist.errors import ConfigError

FILE = "pyproject.toml"
TOOL_TABLE = "tool.fleetdist"
# Outputs and state of fleetdist, tools and virtualenvs, and fleetdist's own
# project files, inside a project directory: never part of a release.  A
# leading "/" anchors a pattern at the source directory (see builders.tree).
DEFAULT_EXCLUDES = (
    "/dist",
    "/build",
    "/.fleetdist",
    "/.fleet",
    "/.venv",
    "/recipes",
    "/inventories",
    "/env",
    "*.egg-info",
    "/.tox",
    "/.nox",
    "/.pytest_cache",
    "/.mypy_cache",
    "/.ruff_cache",
)


@dataclass(frozen=True)
class ProjectMeta:
    """Static `[project]` values (None when absent), and whether the version is dynamic."""

    source: str
    name: str | None = None
    version: str | None = None
    dynamic_version: bool = False


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a problem is one line naming the file (and tomllib's line)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def normalise(name: str) -> str:
    """PEP 503's normal form, which fits fleetdist's app-name grammar for any sane name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_meta(source_dir: Path) -> ProjectMeta | None:
    """`[project]` of `source_dir/pyproject.toml`, or None when there is no such file."""
    path = source_dir / FILE
    if not path.is_file():
        return None
    table = read_toml(path).get("project")
    if table is None:
        return ProjectMeta(str(path))
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: project: expected a table")
    dynamic = table.get("dynamic", [])
    name, version = table.get("name"), table.get("version")
    for key, value in (("name", name), ("version", version)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: project.{key}: expected a string")
    if not isinstance(dynamic, list):
        raise ConfigError(f"{path}: project.dynamic: expected a list")
    return ProjectMeta(
        str(path),
        normalise(name) if name else None,
        version,
        "version" in dynamic,
    )


def _tool(data: dict[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("fleetdist") if isinstance(tool, dict) else None


def tool_table(path: Path) -> dict[str, Any]:
    """The `[tool.fleetdist]` table of a pyproject.toml used as the recipe."""
    table = _tool(read_toml(path))
    if table is None:
        raise ConfigError(f"{path}: no [{TOOL_TABLE}] table (the recipe fleetdist would read)")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {TOOL_TABLE}: expected a table")
    return table


def has_tool_table(path: Path) -> bool:
    """Whether `path` is a readable pyproject.toml with a `[tool.fleetdist]` table."""
    try:
        return isinstance(_tool(read_toml(path)), dict)
    except ConfigError:
        return path.is_file()  # a broken file is reported when it is loaded
