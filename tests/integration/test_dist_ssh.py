"""Over real SSH: `fleetdist dist --hosts` applies one dist.json to several hosts.

One host's in-place test fails (its inventory vars say so): its links, `.dist`
files and epoch stay as they were while the others flip; what lands on a host
is the tree a local `fleetdist dist` writes; `-n` moves every host back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fleetdist import cli

from .fleet import Fleet

pytestmark = pytest.mark.integration

ROOT = "/srv/dist"
CACHE = "/srv/cache"
DIST = {
    "version": 1,
    "author": "team@example.com",
    "targets": {
        "app": {"source": "app", "destination": "{DEPLOY_ROOT}/lib/app"},
        "tool": {"source": "tool.sh", "destination": "{DEPLOY_ROOT}/bin/tool"},
    },
    "fleetdist": {"test": ["test {MUST} = ok"]},
}
# Every path under a root except fleetdist's own records: type, mode, link or sha256.
LISTING = (
    "cd {root} && find . -path ./.fleetdist -prune -o -path ./.distman -prune -o -print | sort |"
    ' while read -r p; do if [ -h "$p" ]; then echo "$p l $(readlink "$p")";'
    ' elif [ -d "$p" ]; then echo "$p d $(stat -c %a "$p")";'
    ' else echo "$p f $(stat -c %a "$p") $(sha256sum < "$p" | cut -c1-16)"; fi; done'
)


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "dist.json").write_text(json.dumps(DIST))
    (path / "app" / "sub").mkdir(parents=True)
    (path / "app" / "a.txt").write_text("v1\r\n")
    (path / "app" / "sub" / "b.txt").write_text("b\n")
    (path / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (path / "tool.sh").chmod(0o755)
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "first")
    return path


def _dist(repo: Path, project: Path, inventory: Path, *args: str) -> int:
    old = Path.cwd()
    os.chdir(repo)
    try:
        return cli.main(["dist", "--project", str(project), "-i", str(inventory), *args])
    finally:
        os.chdir(old)


def _status(
    repo: Path, project: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> dict[tuple[str, str], str | None]:
    """`fleetdist status --dist`: (host, target) -> the version its link points at."""
    capsys.readouterr()
    old = Path.cwd()
    os.chdir(repo)
    try:
        code = cli.main(
            ["status", "--dist", "--project", str(project), "-i", str(inventory), "--json"]
        )
    finally:
        os.chdir(old)
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    return {(h["host"], t["target"]): t["version"] for h in doc["hosts"] for t in h["targets"]}


def _listing(fleet: Fleet, host: str) -> str:
    return fleet.exec(host, LISTING.format(root=ROOT)).stdout


def _local(repo: Path, local: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`fleetdist dist -y` here into `local`; the listing of what it wrote."""
    monkeypatch.setenv("DEPLOY_ROOT", str(local))
    monkeypatch.chdir(repo)
    assert cli.main(["dist", "-y"]) == 0
    monkeypatch.delenv("DEPLOY_ROOT")
    return subprocess.run(
        ["sh", "-c", LISTING.format(root=local)], capture_output=True, text=True, check=True
    ).stdout


def _inventory(fleet: Fleet, tmp_path: Path, broken: str | None = None) -> Path:
    """web01-web03 with DEPLOY_ROOT and CACHE_ROOT; `broken`'s in-place test fails."""
    hosts = {broken: {"vars": {"MUST": "broken"}}} if broken else {}
    return fleet.inventory(
        tmp_path,
        ("web01", "web02", "web03"),
        {
            "defaults": {"vars": {"DEPLOY_ROOT": ROOT, "CACHE_ROOT": CACHE, "MUST": "ok"}},
            "hosts": hosts,
        },
    )


def test_dist_hosts_flips_the_passing_hosts_and_moves_back(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "log"))
    monkeypatch.delenv("DEPLOY_ROOT", raising=False)
    repo = _repo(tmp_path / "repo")
    first = _git(repo, "rev-parse", "--short=7", "HEAD")
    project = tmp_path / "project"
    project.mkdir()
    local = tmp_path / "local"

    inventory = _inventory(fleet, tmp_path)
    assert _dist(repo, project, inventory, "--hosts", "web*", "--canary", "1") == 0
    assert _listing(fleet, "web01") == _local(repo, local, monkeypatch)
    before = {
        path: fleet.exec("web02", ["cat", f"{ROOT}/{path}"]).stdout
        for path in ("lib/.app.dist", "bin/.tool.dist", ".distman/epoch")
    }
    listing = _listing(fleet, "web02")

    # A second commit; web02's in-place test fails there: it keeps everything it had.
    (repo / "app" / "a.txt").write_text("v2\n")
    _git(repo, "commit", "-qam", "second")
    second = _git(repo, "rev-parse", "--short=7", "HEAD")
    inventory = _inventory(fleet, tmp_path, broken="web02")
    assert _dist(repo, project, inventory, "--hosts", "web*", "--batch", "1") == 1
    for host in ("web01", "web03"):
        link = fleet.exec(host, ["readlink", f"{ROOT}/lib/app"]).stdout.strip()
        assert link == f"versions/app.1.{second}", host
    assert _listing(fleet, "web02") == listing
    assert before == {
        path: fleet.exec("web02", ["cat", f"{ROOT}/{path}"]).stdout for path in before
    }
    assert _status(repo, project, inventory, capsys) == {
        ("web01", "app"): f"app.1.{second}",
        ("web01", "tool"): f"tool.1.{second}",
        ("web02", "app"): f"app.0.{first}",
        ("web02", "tool"): f"tool.0.{first}",
        ("web03", "app"): f"app.1.{second}",
        ("web03", "tool"): f"tool.1.{second}",
    }
    # What a host holds is what a local `fleetdist dist` writes for the same repo.
    here = _local(repo, local, monkeypatch)
    assert _listing(fleet, "web01") == here
    assert "tool.1." in here and f" l versions/app.1.{second}" in here

    assert _dist(repo, project, inventory, "-n", "0", "--hosts", "web01,web03") == 0
    for host in ("web01", "web03"):
        assert fleet.exec(host, ["readlink", f"{ROOT}/lib/app"]).stdout.strip() == (
            f"versions/app.0.{first}"
        )
        info = fleet.exec(host, ["cat", f"{ROOT}/lib/.app.dist"]).stdout
        assert f"commit: {first}\n" in info
    assert _listing(fleet, "web02") == listing

    # Each host refreshes its own cache from what was just disted there.
    argv = ["cache", "--project", str(project), "-i", str(inventory), "--hosts", "web01,web03"]
    assert cli.main(argv) == 0
    assert fleet.exec("web01", ["readlink", f"{CACHE}/lib/app"]).stdout.strip() == (
        f"versions/app.0.{first}"
    )
    cached = fleet.exec("web01", ["cat", f"{CACHE}/lib/versions/app.0.{first}/a.txt"]).stdout
    assert cached == "v1\n"
    assert fleet.exec("web01", ["test", "-e", f"{CACHE}/lib/versions/app.1.{second}"]).returncode
    epochs = [
        fleet.exec("web03", ["cat", f"{r}/.distman/epoch"]).stdout.strip() for r in (ROOT, CACHE)
    ]
    assert epochs[0] and epochs[0] == epochs[1]
    assert fleet.exec("web01", ["test", "-e", f"{CACHE}/.fleetdist"]).returncode == 1
