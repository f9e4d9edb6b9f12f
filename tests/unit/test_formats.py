"""tar.bz2, tar.xz and pex: byte-reproducible, SOURCE_DATE_EPOCH honoured, listed, deployable."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Any

import pytest

from .conftest import HOSTS, REPO, Project


def build(project: Project, dist: str, formats: str) -> dict[str, dict[str, Any]]:
    """Build `formats` into a fresh `dist` (moved aside afterwards); rows by format."""
    result = project.run("build", "--json", "--formats", formats)
    assert result.code == 0, result.err
    rows = json.loads((project.root / "dist" / "artifacts.json").read_text())
    target = project.root / dist
    shutil.move(project.root / "dist", target)
    return {row["format"]: {**row, "bytes": (target / row["file"]).read_bytes()} for row in rows}


@pytest.mark.parametrize("fmt", ["tar.bz2", "tar.xz"])
def test_compressed_tars_are_byte_reproducible_and_honour_source_date_epoch(
    project: Project, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    first = build(project, "dist-1", fmt)[fmt]
    second = build(project, "dist-2", fmt)[fmt]
    assert first["bytes"] == second["bytes"]
    assert first["file"].endswith(f".{fmt}") and first["sha256"] == second["sha256"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = build(project, "dist-3", fmt)[fmt]
    assert later["bytes"] != first["bytes"] and later["release_id"] == first["release_id"]
    with tarfile.open(fileobj=io.BytesIO(later["bytes"])) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_a_built_tar_xz_deploys(project: Project) -> None:
    rows = build(project, "dist", "tar.bz2,tar.xz")
    assert set(rows) == {"tar.bz2", "tar.xz"}
    assert rows["tar.bz2"]["release_id"] == rows["tar.xz"]["release_id"], "one tree, one id"
    art = project.root / "dist" / rows["tar.xz"]["file"]
    rid = project.deploy("--artifact", str(art))
    assert rid == rows["tar.xz"]["release_id"]
    assert {project.current(h) for h in HOSTS} == {rid}


@pytest.fixture
def pex_project(project: Project) -> Project:
    project.write_recipe(test=["./hello.pex --version"], healthcheck="./hello.pex --version")
    return project


def test_pex_is_reproducible_runs_with_python3_and_deploys(
    pex_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pex_project
    first = build(project, "dist-1", "pex")["pex"]
    second = build(project, "dist-2", "pex")["pex"]
    assert first["bytes"] == second["bytes"], "same inputs, same pex"
    assert first["bytes"].startswith(b"#!/usr/bin/env python3\n")
    pex = project.root / "dist-1" / first["file"]
    ran = subprocess.run(["python3", str(pex), "--version"], capture_output=True, text=True)
    assert ran.stdout.strip() == "1.0.0", ran.stderr
    with zipfile.ZipFile(pex) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = build(project, "dist-3", "pex")["pex"]
    with zipfile.ZipFile(io.BytesIO(later["bytes"])) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    monkeypatch.delenv("SOURCE_DATE_EPOCH")

    rid = project.deploy("--artifact", str(pex))
    assert rid == first["release_id"]
    for host in HOSTS:
        shipped = project.host_root(host) / "current" / "hello.pex"
        assert os.access(shipped, os.X_OK)
        assert shipped.read_bytes() == first["bytes"]


def test_inv_build_makes_any_subset_in_parallel_with_one_log_per_build(project: Project) -> None:
    """The `inv` door: one artifacts.json for the subset, and each build's own whole log."""
    inv = shutil.which("inv", path=os.path.dirname(sys.executable)) or "inv"
    shutil.copyfile(REPO / "tasks.py", project.root / "tasks.py")
    shutil.copyfile(REPO / "fabfile.py", project.root / "fabfile.py")
    proc = subprocess.run(
        [inv, "build", "--formats", "tar.xz,zip,tar.bz2,wheel"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((project.root / "dist" / "artifacts.json").read_text())
    assert [r["format"] for r in rows] == ["tar.xz", "zip", "tar.bz2", "wheel"]
    logs = project.root / "dist" / "logs"
    assert sorted(p.name for p in logs.iterdir()) == [
        "tar.bz2.log",
        "tar.xz.log",
        "wheel.log",
        "zip.log",
    ]
    assert "[tar.xz] wrote" in proc.stderr and "[zip] wrote" in proc.stderr
    assert "wrote" in (logs / "tar.bz2.log").read_text()
