"""`fleetdist dist` odds and ends: log file, LOG_LEVEL, -s, --version, remote checks, links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetdist.cli import main

from .distman_repo import commit, fleetdist, git, isolate, make_repo, write


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("DEPLOY_ROOT", str(tmp_path / "deploy"))
    return make_repo(tmp_path / "repo")


def test_runs_are_logged_to_log_dir_but_dry_runs_are_not(repo, tmp_path, capsys) -> None:
    assert fleetdist(repo, "-d", capsys=capsys).code == 0
    assert not (tmp_path / "log").exists()
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    text = (tmp_path / "log" / "distman.log").read_text()
    assert " - INFO - Updated: bin/hello.sh =f> " in text


def test_log_level_warning_quiets_info_lines(repo, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    done = fleetdist(repo, "-y", "-t", "hello", capsys=capsys)
    assert done.code == 0 and "Updated" not in done.err


def test_show_lists_links_and_versions(repo, tmp_path, capsys) -> None:
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    head = git(repo, "rev-parse", "--short=7", "HEAD")
    done = fleetdist(repo, "-s", "-t", "hello", "tools", capsys=capsys)
    assert done.err.splitlines() == [  # in dist.json order
        f"Missing: {tmp_path / 'deploy' / 'etc' / 'tools'}",
        f"bin/hello.sh =f> versions/hello.0.{head}",
    ]
    vv = fleetdist(repo, "-s", "-vv", "-t", "hello", capsys=capsys).err
    assert "Branch: main" in fleetdist(repo, "-vv", "-y", "-t", "hello", capsys=capsys).err
    assert f"0: {tmp_path / 'deploy' / 'bin' / 'versions'}/hello.0.{head} - " in vv
    assert "    first" in vv and "Branch: main" in vv


def test_version_flag(capsys) -> None:
    assert main(["dist", "--version"]) == 0
    assert "distman 0.8.4" in capsys.readouterr().out


def test_behind_remote_is_refused_but_ahead_is_not(repo, tmp_path, capsys) -> None:
    """distman 0.8.4 checked `origin/B..B` (ahead) and refused unpushed work instead."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    write(repo / "doc.txt", "ahead\n")
    commit(repo, "ahead of origin")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    git(repo, "push", "-q", "origin", "main")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    done = fleetdist(repo, "-y", "-t", "hello", capsys=capsys)
    assert done.code == 1 and "Directory is 1 commits behind remote" in done.err


def test_symlink_source_deploys_what_it_points_at(repo, tmp_path, capsys) -> None:
    """distman made a dangling `versions/latest.conf.0.X -> etc/app.conf` and exited 0."""
    (repo / "latest.cfg").symlink_to("tools/sub/deep.cfg")
    write(
        repo / "dist.json",
        '{"targets": {"l": {"source": "latest.cfg", "destination": "{DEPLOY_ROOT}/etc/l.cfg"}}}',
    )
    commit(repo, "link")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    assert (tmp_path / "deploy" / "etc" / "l.cfg").read_text() == "deep\n"
    assert os.path.islink(tmp_path / "deploy" / "etc" / "l.cfg")


def test_destination_under_a_file_is_refused_before_writing(repo, tmp_path, capsys) -> None:
    write(tmp_path / "deploy" / "etc", "a file, not a folder\n")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and f"'{tmp_path / 'deploy' / 'etc'}' is not a directory" in done.err
    assert sorted(os.listdir(tmp_path / "deploy")) == ["etc"]  # nothing else was created


def test_cache_workers_must_be_positive(repo, tmp_path, capsys) -> None:
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    src, dst = str(tmp_path / "deploy"), str(tmp_path / "c")
    assert main(["cache", "--src", src, "--dst", dst, "--workers", "0", "-f"]) == 1
    assert "--workers: must be at least 1" in capsys.readouterr().err
