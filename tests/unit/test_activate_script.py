"""The activation script's idea of the release it replaces, run here with `sh`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fleetdist.release import steps
from fleetdist.release.layout import MARKER, ReleaseLayout
from fleetdist.report import ledger

TEMPLATE = ledger.template("deploy", app="app", env="prod", run="r1", result="ok", who="me")


def host(tmp_path: Path, current: str | None) -> Path:
    root = tmp_path / "root"
    (root / ".fleetdist" / "tested").mkdir(parents=True)
    for rid in ("a", "b"):
        (root / "releases" / rid).mkdir(parents=True)
        (root / "releases" / rid / MARKER).write_text(f"{rid} sha\n")
        (root / ".fleetdist" / "tested" / rid).write_text("sha r0\n")
    if current:
        os.symlink(f"releases/{current}", root / "current")
    return root


def activate(root: Path, seen: str | None) -> dict[str, object]:
    """Flip to "b" believing `current` is `seen`; return the ledger line the host wrote."""
    ctx = steps.Context(layout=ReleaseLayout(str(root)), app="app", release_id="b")
    text = steps.activate(
        ctx, None, "b", ledger_ok=TEMPLATE, ledger_reverted=TEMPLATE, seen=seen
    ).text
    done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert os.readlink(root / "current") == "releases/b"
    line: dict[str, object] = json.loads((root / ".fleetdist" / "ledger.jsonl").read_text())
    return line


@pytest.mark.parametrize(
    ("current", "seen"),
    [("a", "a"), ("a", None), ("a", "b"), ("a", "gone"), (None, None), (None, "a")],
    ids=["seen-right", "seen-nothing", "seen-target", "seen-unknown", "first", "removed"],
)
def test_the_host_confirms_what_the_controller_saw(
    tmp_path: Path, current: str | None, seen: str | None
) -> None:
    """A stale belief never reaches the ledger or `previous`: the host reads its link then."""
    root = host(tmp_path, current)
    line = activate(root, seen)
    assert (line["from"], line["to"]) == (current, "b")
    previous = root / ".fleetdist" / "previous"
    assert (previous.read_text().strip() if previous.exists() else None) == current
