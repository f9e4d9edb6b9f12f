"""`fleetdist cache` keeps distcache's contract, checked against real distman 0.8.4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetdist.cli import main

from .distman_repo import commit, fleetdist, isolate, make_repo, snapshot, write

pytest.importorskip("distman")


@pytest.fixture
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    """A deploy root (ENV=dev under tmp/root) holding two commits of the fixture repo."""
    isolate(monkeypatch, tmp_path)
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setenv("ROOT", str(tmp_path / "root"))
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    write(repo / "tools" / "sub" / "deep.cfg", "v2\n")
    commit(repo, "second")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    return tmp_path / "root" / "dev"


def distcache(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distman.cli", "cache", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def cache(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["cache", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cache_tree_matches_distcache(deployed: Path, tmp_path: Path, capsys) -> None:
    assert distcache("--src", str(deployed), "--dst", str(tmp_path / "c1")).returncode == 0
    code, _ = cache(capsys, "--src", str(deployed), "--dst", str(tmp_path / "c2"))
    assert code == 0
    ref, ours = snapshot(tmp_path / "c1", deployed), snapshot(tmp_path / "c2", deployed)
    assert ref.pop(".distman/last_check")[0] == ours.pop(".distman/last_check")[0]
    assert ours == ref
    # only the linked versions: tools.1 is cached, tools.0 is not
    assert any(p.startswith("etc/versions/tools.1.") for p in ours)
    assert not any(p.startswith("etc/versions/tools.0.") for p in ours)


def test_dry_run_exits_10_when_stale_and_0_when_fresh(deployed, tmp_path, capsys) -> None:
    dst = str(tmp_path / "c")
    assert cache(capsys, "--src", str(deployed), "--dst", dst, "-d") == (
        10,
        "missing destination epoch file\n",
    )
    assert cache(capsys, "--src", str(deployed), "--dst", dst)[0] == 0
    assert cache(capsys, "--src", str(deployed), "--dst", dst, "-d") == (0, "cache is fresh\n")
    code, out = cache(capsys, "--src", str(deployed), "--dst", dst)
    assert (code, out) == (0, "cache check skipped (use -t 0 to override TTL)\n")


def test_rollback_makes_the_cache_stale(deployed, tmp_path, capsys) -> None:
    """distman 0.8.4: after `dist -n`, `distcache -t 0 -d` said fresh (no epoch bump)."""
    dst = str(tmp_path / "c")
    repo = tmp_path / "repo"
    assert cache(capsys, "--src", str(deployed), "--dst", dst)[0] == 0
    assert fleetdist(repo, "-n", "0", "-t", "tools", capsys=capsys).code == 0
    code, out = cache(capsys, "--src", str(deployed), "--dst", dst, "-d", "-t", "0")
    assert code == 10 and out.startswith("cache is stale")
    assert cache(capsys, "--src", str(deployed), "--dst", dst, "-t", "0")[0] == 0
    assert os.readlink(Path(dst) / "etc" / "tools").startswith("versions/tools.0.")


def test_diff_sees_symlinked_directories_on_both_sides(deployed, tmp_path, capsys) -> None:
    """distcache --diff never recorded the cache's directory links: `+ etc/tools` forever."""
    dst = tmp_path / "c"
    assert cache(capsys, "--src", str(deployed), "--dst", str(dst))[0] == 0
    ref = distcache("--src", str(deployed), "--dst", str(dst), "--diff")
    assert "+ etc/tools" in ref.stdout + ref.stderr  # the bug, still in distman 0.8.4
    assert cache(capsys, "--src", str(deployed), "--dst", str(dst), "--diff") == (0, "")
    os.unlink(dst / "etc" / "tools")
    os.symlink("versions/elsewhere", dst / "etc" / "tools")
    code, out = cache(capsys, "--src", str(deployed), "--dst", str(dst), "--diff")
    assert (code, out) == (0, "~ etc/tools [symlink target differs]\n")


def test_prune_keeps_only_linked_versions(deployed, tmp_path, capsys) -> None:
    dst = tmp_path / "c"
    assert cache(capsys, "--src", str(deployed), "--dst", str(dst))[0] == 0
    (dst / "etc" / "versions" / "tools.7.abcdef1").mkdir()
    code, out = cache(capsys, "--src", str(deployed), "--dst", str(dst), "-p")
    assert code == 0 and "pruned 1 unreferenced versions" in out
    assert not (dst / "etc" / "versions" / "tools.7.abcdef1").exists()
    assert (dst / "etc" / "tools").resolve().is_dir()


def test_delete_refuses_a_short_path(deployed, capsys) -> None:
    code, out = cache(capsys, "--src", str(deployed), "--dst", "/tmp", "--delete")
    assert code == 1 and "refusing to delete dangerous cache root: /tmp" in out


@pytest.mark.parametrize("where", ["inside", "same", "around"])
def test_a_cache_overlapping_the_deploy_root_is_refused(deployed: Path, capsys, where: str) -> None:
    """distcache would copy a cache inside DEPLOY_ROOT into itself, level after level, or
    with --delete remove the deploy root it overlaps: refused before anything is read."""
    dst = {"inside": deployed / "cache", "same": deployed, "around": deployed.parent}[where]
    dst.mkdir(exist_ok=True)
    before = sorted(p.relative_to(deployed.parent) for p in deployed.parent.rglob("*"))
    for extra in ((), ("--delete",), ("-p",)):
        code, out = cache(capsys, "--src", str(deployed), "--dst", str(dst), *extra)
        assert code == 1 and "overlap" in out, out
    assert sorted(p.relative_to(deployed.parent) for p in deployed.parent.rglob("*")) == before
