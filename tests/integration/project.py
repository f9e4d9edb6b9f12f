"""A throwaway fleetdist project (recipe, env files, app) for integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from fleetdist import cli

REPO = Path(__file__).resolve().parents[2]


class Project:
    """A project directory wired to one inventory; `run` drives the real CLI."""

    def __init__(self, root: Path, inventory: Path) -> None:
        self.root, self.inventory = root, inventory
        shutil.copytree(REPO / "env", root / "env")
        shutil.copytree(
            REPO / "examples" / "hello", root / "app", ignore=shutil.ignore_patterns("__pycache__")
        )
        (root / "recipes").mkdir()
        self.recipe()

    def recipe(self, **overrides: Any) -> Path:
        """(Re)write recipes/hello.yaml with `overrides` on top of a working default."""
        doc: dict[str, Any] = {
            "app": "hello",
            "version": "{HELLO_VERSION}",
            "source": {"path": "../app"},
            "deploy_root": "{DEPLOY_BASE}/hello",
            "keep": 3,
            "test": ["python3 -m unittest discover -s tests -t . -q"],
            "healthcheck": "python3 -m hello --version",
        }
        doc.update(overrides)
        path = self.root / "recipes" / "hello.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def run(self, *argv: str) -> int:
        return cli.main(
            [*argv[:1], "--project", str(self.root), "-i", str(self.inventory), *argv[1:]]
        )
