"""Each distman 0.8.4 bug listed in issue 12, and what `fleetdist dist` does instead."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .distman_repo import commit, env, fleetdist, git, make_repo, small_repo, target, write

__all__ = ["env"]  # the fixture


def epoch(root: Path) -> str:
    return (root / ".distman" / "epoch").read_text()


def test_nothing_is_written_when_a_later_target_is_missing(env, tmp_path, capsys) -> None:
    repo = small_repo(
        tmp_path / "r", {"a": target("a.cfg", "etc/a"), "zmissing": target("no.cfg", "etc/z")}
    )
    write(repo / "a.cfg", "a\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1
    assert "Target zmissing: Source 'no.cfg' does not exist" in done.err
    assert not env.exists()  # distman had already deployed `a`


def test_nothing_is_written_when_a_later_token_is_unknown(env, tmp_path, capsys) -> None:
    repo = small_repo(
        tmp_path / "r", {"a": target("a.cfg", "etc/a"), "b": target("a.cfg", "{NOPE_VAR}/b")}
    )
    write(repo / "a.cfg", "a\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and "Cannot resolve token: NOPE_VAR" in done.err
    assert not env.exists()


def test_dirty_file_deep_under_a_directory_target_is_refused(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo / "tools" / "sub" / "deep.cfg", "edited\n")
    done = fleetdist(repo, "-y", "-t", "tools", capsys=capsys)
    assert done.code == 1
    assert "Source 'tools' has uncommitted changes (tools/sub/deep.cfg)" in done.err
    assert not env.exists()


def test_untracked_file_deep_under_a_directory_target_is_refused(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    write(repo / "tools" / "sub" / "new.cfg", "new\n")
    assert fleetdist(repo, "-y", "-t", "tools", capsys=capsys).code == 1


def test_forced_dirty_content_is_marked_dirty(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "--short=7", "HEAD")
    assert fleetdist(repo, "-y", "-t", "tools", capsys=capsys).code == 0
    write(repo / "tools" / "sub" / "deep.cfg", "edited\n")
    assert fleetdist(repo, "-y", "-f", "-t", "tools", capsys=capsys).code == 0
    assert os.readlink(env / "etc" / "tools") == f"versions/tools.1.{head}-dirty"
    assert f"commit: {head}-dirty\n" in (env / "etc" / ".tools.dist").read_text()
    assert (env / "etc" / "tools" / "sub" / "deep.cfg").read_text() == "edited\n"
    again = fleetdist(repo, "-y", "-f", "-t", "tools", capsys=capsys)  # same edit: no new version
    assert "Unchanged: tools" in again.err and len(os.listdir(env / "etc" / "versions")) == 2


def test_force_on_a_clean_tree_makes_no_new_version(env, tmp_path, capsys) -> None:
    """distman 0.8.4: every `-f` run made a new version of the same commit."""
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    done = fleetdist(repo, "-y", "-f", "-t", "hello", capsys=capsys)
    assert "Unchanged: bin/hello.sh" in done.err
    assert len(os.listdir(env / "bin" / "versions")) == 1


def test_python3_and_python3_11_do_not_collide(env, tmp_path, capsys) -> None:
    repo = small_repo(
        tmp_path / "r",
        {"py311": target("py311", "bin/python3.11"), "py3": target("py3", "bin/python3")},
    )
    write(repo / "py311", "3.11\n")
    write(repo / "py3", "3\n")
    commit(repo, "one")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    write(repo / "py3", "3 again\n")
    head = commit(repo, "two")
    assert fleetdist(repo, "-y", "-t", "py3", capsys=capsys).code == 0
    # distman read python3.11.0.X as python3 version 11 and made python3.12.X
    assert os.readlink(env / "bin" / "python3") == f"versions/python3.1.{head}"
    shown = fleetdist(repo, "-s", "-v", "-t", "py3", capsys=capsys).err
    assert "python3.11" not in shown and "python3.0." in shown
    assert fleetdist(repo, "--delete", "-y", "-t", "py3", capsys=capsys).code == 0
    assert (env / "bin" / "python3.11").read_text() == "3.11\n"


@pytest.mark.parametrize(
    "args", [("-n", "0"), ("-c", "{first}"), ("--reset",), ("--delete", "-n", "0", "-y")]
)
def test_link_moves_and_deletes_bump_the_epoch(env, tmp_path, capsys, args) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "--short=7", "HEAD")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 2\n", 0o755)
    commit(repo, "two")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    if args == ("--reset",):
        assert fleetdist(repo, "-n", "0", "-t", "hello", capsys=capsys).code == 0
    before = epoch(env)
    args = tuple(a.format(first=first) for a in args)
    done = fleetdist(repo, *args, "-t", "hello", capsys=capsys)
    assert done.code == 0, done.err
    assert epoch(env) != before
    linked = os.readlink(env / "bin" / "hello").rsplit(".", 1)[1]
    assert f"commit: {linked}\n" in (env / "bin" / ".hello.dist").read_text()


def test_deleting_the_linked_version_fails_and_deletes_nothing(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", "-t", "hello", "doc", capsys=capsys).code == 0
    done = fleetdist(repo, "--delete", "-n", "0", "-y", capsys=capsys)
    assert done.code == 1  # distman: a warning and exit 0
    assert "because it is linked to the version being deleted" in done.err
    assert (env / "bin" / "hello").exists() and (env / "share" / "fixture" / "doc.txt").exists()
    assert len(os.listdir(env / "bin" / "versions")) == 1


def test_retention_spares_the_linked_version_and_the_one_before(
    env, tmp_path, capsys, monkeypatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    for n in range(4):
        write(repo / "bin" / "hello.sh", f"#!/bin/sh\necho {n}\n", 0o755)
        commit(repo, f"c{n}")
        assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    assert fleetdist(repo, "-n", "2", "-t", "hello", capsys=capsys).code == 0
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 4\n", 0o755)
    commit(repo, "c4")
    monkeypatch.setenv("KEEP_VERSIONS", "1")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    kept = sorted(int(n.split(".")[1]) for n in os.listdir(env / "bin" / "versions"))
    # 4 is linked (and newest), 3 is the one before it, 2 was linked until now
    assert kept == [2, 3, 4]
    assert os.readlink(env / "bin" / "hello").startswith("versions/hello.4.")


def test_a_question_without_a_terminal_says_to_pass_yes(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    done = fleetdist(repo, "-t", "hello", capsys=capsys)  # pytest's stdin is no TTY
    assert done.code == 1  # distman: an EOFError traceback
    assert "Destination dir" in done.err and "pass -y to answer yes" in done.err
    assert "Traceback" not in done.err and not env.exists()


def test_location_names_the_repo_not_the_cwd(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = fleetdist(elsewhere, str(repo), "-y", "-t", "tools", capsys=capsys)
    assert done.code == 0, done.err
    info = (env / "etc" / ".tools.dist").read_text()
    assert "name: repo\n" in info and f"origin: {repo.resolve()}\n" in info
    assert f"source: {repo}/tools\n" in info
    assert list(elsewhere.iterdir()) == [] and not (repo / "build").exists()


def test_max_versions_zero_never_reuses_a_number(env, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MAX_VERSIONS", "0")
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 2\n", 0o755)
    commit(repo, "two")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    numbers = sorted(n.split(".")[1] for n in os.listdir(env / "bin" / "versions"))
    assert numbers == ["0", "1"]  # distman: hello.0.<c1> and hello.0.<c2>


def test_version_only_leaves_link_and_info_alone(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "--short=7", "HEAD")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 2\n", 0o755)
    second = commit(repo, "two")
    assert fleetdist(repo, "-y", "--version-only", "-t", "hello", capsys=capsys).code == 0
    assert os.readlink(env / "bin" / "hello") == f"versions/hello.0.{first}"
    assert f"commit: {first}\n" in (env / "bin" / ".hello.dist").read_text()
    assert (env / "bin" / "versions" / f"hello.1.{second}").exists()
    done = fleetdist(repo, "-y", "-t", "hello", capsys=capsys)  # found by commit, re-linked
    assert os.readlink(env / "bin" / "hello") == f"versions/hello.1.{second}"
    assert f"commit: {second}\n" in (env / "bin" / ".hello.dist").read_text()
    assert len(os.listdir(env / "bin" / "versions")) == 2, done.err


def test_dry_run_writes_nothing(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    done = fleetdist(repo, "-d", capsys=capsys)
    assert done.code == 0 and "NOTICE: Dry run (no changes will be made)" in done.err
    assert "Updated: tools =d>" in done.err and not env.exists()


def test_ad_hoc_source_and_dest_without_dist_json(env, tmp_path, capsys) -> None:
    folder = tmp_path / "plain"
    write(folder / "f.sh", "#!/bin/sh\n", 0o755)
    done = fleetdist(
        folder, "--source", "f.sh", "--dest", "{DEPLOY_ROOT}/bin/f", "-y", capsys=capsys
    )
    assert done.code == 0, done.err
    assert os.readlink(env / "bin" / "f") == "versions/f.0"  # outside git: no hash
    again = fleetdist(
        folder, "--source", "f.sh", "--dest", "{DEPLOY_ROOT}/bin/f", "-y", capsys=capsys
    )
    assert "Unchanged" in again.err and os.listdir(env / "bin" / "versions") == ["f.0"]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"targets": {"a": {"source": "x", "destination": "y"}}, "version": 2}',
            "newer than supported version: 2",
        ),
        ('{"targets": {}}', "targets: no targets"),
        ('{"targets": {"a": {"source": "x"}}}', "targets.a.destination: missing required field"),
        (
            '{"targets": {"a": {"source": "x", "destination": "y", "optoins": {}}}}',
            "targets.a.optoins: unknown key",
        ),
        (
            '{"targets": {"a": {"source": "x", "destination": "y", "options": {"match": "hash"}}}}',
            "options.match: must be one of commit, content",
        ),
        ('{"targets": {"a": ', "failed to parse dist file"),
    ],
)
def test_bad_dist_json_is_one_line_and_exit_1(env, tmp_path, capsys, text, message) -> None:
    folder = tmp_path / "r"
    write(folder / "dist.json", text)
    done = fleetdist(folder, "-y", capsys=capsys)
    assert done.code == 1 and message in done.err, done.err
    assert len(done.err.strip().splitlines()) == 1


def test_link_is_never_missing_while_it_moves(env, tmp_path, capsys) -> None:
    """distman unlinks then links: a reader could find no link at all in between."""
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 2\n", 0o755)
    commit(repo, "two")
    assert fleetdist(repo, "-y", "-t", "hello", capsys=capsys).code == 0
    link, stop, missing = env / "bin" / "hello", threading.Event(), []

    def watch() -> None:
        while not stop.is_set():
            if not os.path.lexists(link):
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for n in range(30):
            assert fleetdist(repo, "-n", str(n % 2), "-t", "hello", capsys=capsys).code == 0
    finally:
        stop.set()
        watcher.join()
    assert missing == []


def test_concurrent_runs_leave_one_complete_version_linked(env, tmp_path) -> None:
    """distman: 8 concurrent runs all exited 0 with 427 of 3000 files in the linked version."""
    repo = small_repo(tmp_path / "r", {"big": target("big", "lib/big")})
    for i in range(1500):
        write(repo / "big" / f"d{i % 30}" / f"f{i}.txt", f"{i}\n")
    commit(repo, "many files")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "fleetdist.cli", "dist", "-y"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=300)[1] for p in runs]
    assert [p.returncode for p in runs] == [0] * 6, errors
    versions = os.listdir(env / "lib" / "versions")
    assert len(versions) == 1  # one made it, the others found it by commit
    assert sum(len(files) for _, _, files in os.walk(env / "lib" / "big")) == 1500
    assert sum("Updated:" in err for err in errors) == 1


def test_delete_over_many_targets_says_each_path_once(env, tmp_path, capsys) -> None:
    """distman re-processed every earlier target for each target: quadratic `Delete:` lines."""
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", "-t", "hello", "pk", "doc", capsys=capsys).code == 0
    done = fleetdist(repo, "--delete", "-y", "-t", "hello", "pk", "doc", capsys=capsys)
    assert done.code == 0, done.err
    lines = [line for line in done.err.splitlines() if line.startswith("Delete: ")]
    assert len(lines) == len(set(lines)) == 4 * 3  # link, .dist and one version per target
    assert sorted(os.listdir(env / "mm")) == ["versions"]


def test_two_sources_for_one_destination_are_refused(env, tmp_path, capsys) -> None:
    repo = small_repo(
        tmp_path / "r", {"a": target("pkgs/a/x.txt", "lib/x"), "b": target("pkgs/b/x.txt", "lib/x")}
    )
    write(repo / "pkgs" / "a" / "x.txt", "a\n")
    write(repo / "pkgs" / "b" / "x.txt", "b\n")
    commit(repo, "one")
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 1 and "both deploy to" in done.err
    assert not env.exists()


def test_a_rerun_on_the_same_commit_changes_nothing(env, tmp_path, capsys) -> None:
    repo = make_repo(tmp_path / "repo")
    assert fleetdist(repo, "-y", capsys=capsys).code == 0
    before = {p: (p.lstat().st_mtime_ns, p.lstat().st_ino) for p in env.rglob("*")}
    done = fleetdist(repo, "-y", capsys=capsys)
    assert done.code == 0 and "Updated" not in done.err
    assert {p: (p.lstat().st_mtime_ns, p.lstat().st_ino) for p in env.rglob("*")} == before
