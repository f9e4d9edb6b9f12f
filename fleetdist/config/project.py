"""Where a project keeps its recipes, inventories, env files and local state.

Everything is relative to one project directory (the current directory by
default), so a runbook that `cd`s into a checkout gets the same result on
any machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fleetdist.config.pyproject import has_tool_table
from fleetdist.errors import ConfigError

DEFAULT_INVENTORY = "local"


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def inventories(self) -> Path:
        return self.root / "inventories"

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    @property
    def state(self) -> Path:
        """Controller-side state: the run journal lives here."""
        return Path(os.environ.get("FLEETDIST_STATE") or self.root / ".fleetdist")

    @property
    def runs(self) -> Path:
        return self.state / "runs"

    def recipe_path(self, name: str | None) -> Path:
        """`-r NAME|PATH`, else the only recipe in recipes/, else pyproject's [tool.fleetdist]."""
        if name:
            return _named(self.recipes, name, "recipe", "-r/--recipe", self.root)
        found = sorted(self.recipes.glob("*.yaml")) + sorted(self.recipes.glob("*.yml"))
        pyproject = self.root / "pyproject.toml"
        if not found and has_tool_table(pyproject):
            return pyproject
        if len(found) != 1:
            listed = ", ".join(p.stem for p in found) or "none"
            raise ConfigError(
                f"-r/--recipe: choose a recipe ({listed} in {self.recipes}, "
                f"and no [tool.fleetdist] in {pyproject})"
            )
        return found[0]

    def inventory_path(self, name: str | None, env: str | None = None) -> Path:
        """`-i NAME|PATH`, else $FLEETDIST_INVENTORY, else the environment's own
        `inventories/<env>.yaml` if there is one, else inventories/local.yaml.

        So `--env dev` and `--env prod` reach different hosts as soon as each
        has its inventory, and never the same ones by default.
        """
        chosen = name or os.environ.get("FLEETDIST_INVENTORY")
        if not chosen and env and "/" not in env:  # load_env checked its grammar already
            chosen = next((str(p) for p in self._env_inventories(env) if p.is_file()), None)
        return _named(self.inventories, chosen or DEFAULT_INVENTORY, "inventory", "-i/--inventory")

    def _env_inventories(self, env: str) -> list[Path]:
        return [self.inventories / f"{env}.yaml", self.inventories / f"{env}.yml"]


def _named(folder: Path, name: str, kind: str, flag: str, root: Path | None = None) -> Path:
    candidates = [Path(name), folder / name, folder / f"{name}.yaml", folder / f"{name}.yml"]
    candidates += [root / name] if root is not None else []  # -r pyproject.toml
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(f"{flag}: no {kind} {name!r} (looked in {folder})")
