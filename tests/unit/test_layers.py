"""Dependencies point one way: doors -> api -> orchestrate -> release/transport/report -> config.

Read from the source with `ast`, so a new import against the grain fails here,
not in review.  `shipping` (the artifact and its payload) is neutral ground
that builders, the release scripts and the api may all use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fleetdist"

# What each layer may import from fleetdist, besides itself.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "shipping": {"config", "errors"},
    "transport": {"config", "errors"},
    "report": {"config", "errors"},
    "release": {"config", "errors", "shipping"},
    # OS package maintainer scripts are made of the release scripts' own functions
    "builders": {"config", "errors", "shipping", "release"},
    "orchestrate": {"config", "errors", "release", "report", "transport"},
    # runbooks drive the orchestrator's per-host rollout; the verb that wires them to a
    # project (`runbooks.py`) sits beside `api`
    "runbook": {"config", "errors", "orchestrate", "release", "report", "transport"},
}


def imported(path: Path) -> set[str]:
    """The fleetdist layers `path` imports (the first name after `fleetdist.`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "fleetdist" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_is_below_it(layer: str) -> None:
    files = [p for p in PACKAGE.rglob("*.py") if layer_of(p) == layer]
    assert files, layer
    wrong = {
        str(p.relative_to(PACKAGE)): sorted(imported(p) - ALLOWED[layer] - {layer})
        for p in files
        if imported(p) - ALLOWED[layer] - {layer}
    }
    assert wrong == {}, f"{layer} imports against the grain"


def test_the_doors_reach_the_core_only_through_api() -> None:
    for door in ("fabfile.py", "tasks.py"):
        below = imported(PACKAGE.parent / door) - {"api", "cli", "doors", "errors"}
        assert below == set(), door
