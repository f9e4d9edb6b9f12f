"""`fleetdist dist` writes the tree real distman 0.8.4 writes, from the same repo.

Both tools run on copies of one fixture repo (same commits, same hashes):
distman under envstack as teams run it, fleetdist plain (it reads
distman.env itself).  Trees are compared with only paths and the epoch's
timestamp normalised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .distman_repo import (
    DISTMAN_ENV,
    commit,
    distman,
    fleetdist,
    isolate,
    make_repo,
    snapshot,
    write,
)

pytest.importorskip("distman")


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    isolate(monkeypatch, tmp_path)
    return make_repo(tmp_path / "a" / "repo"), make_repo(tmp_path / "b" / "repo")


def both(pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str):
    ref, ours = pair
    d = distman(ref, *args, root=tmp_path / "dm")
    f = fleetdist(ours, *args, capsys=capsys, root=tmp_path / "fd")
    return d, f


def trees(pair: tuple[Path, Path], tmp_path: Path):
    return snapshot(tmp_path / "dm", pair[0]), snapshot(tmp_path / "fd", pair[1])


def test_first_dist_matches_distman(pair, tmp_path, capsys) -> None:
    d, f = both(pair, tmp_path, capsys, "-y")
    assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    assert ours == ref
    # the features really took part: env root, tokens from distman.env, CRLF, wildcard, script
    assert ours["dev/etc/tools"] == ("l", f"versions/tools.0.{commit_of(pair[1])}")
    assert (
        "app=fixture\nenv=dev\n"
        in ours[f"dev/etc/versions/tools.0.{commit_of(pair[1])}/app.cfg"][1]
    )
    assert "dev/mm/b-two" in ours and "dev/share/fixture/doc.txt" in ours
    assert not any(".hidden" in p or p.endswith(".bak") for p in ours)
    assert ours["dev/web/style.css"][0] == "l" and "dev/lib/mod.pyc" in ours
    assert "body{color:red;}" in "".join(t for p, (_, t) in ours.items() if "style.css." in p)
    assert "dev/etc/later" not in ours  # ignore_missing


def commit_of(repo: Path) -> str:
    from .distman_repo import git

    return git(repo, "rev-parse", "--short=7", "HEAD")


def test_new_commit_and_rerun_match_distman(pair, tmp_path, capsys) -> None:
    both(pair, tmp_path, capsys, "-y")
    for repo in pair:
        write(repo / "tools" / "sub" / "deep.cfg", "deeper\n")
        commit(repo, "second")
    d, f = both(pair, tmp_path, capsys, "-y")
    assert (d.code, f.code) == (0, 0), (d.err, f.err)
    d, f = both(pair, tmp_path, capsys, "-y")  # same commit again: nothing changes
    assert (d.code, f.code) == (0, 0)
    assert "Unchanged: tools" in f.err and "Unchanged: tools" in d.err
    ref, ours = trees(pair, tmp_path)
    assert ours["dev/etc/tools"][1].startswith("versions/tools.1.")
    # doc.txt did not change, so its content match keeps version 0 linked; distman's
    # .dist then names HEAD anyway, fleetdist's names the linked version (issue 12)
    info = "dev/share/fixture/.doc.txt.dist"
    linked = ours["dev/share/fixture/doc.txt"][1].rsplit(".", 1)[1]
    assert f"commit: {linked}\n" in ours.pop(info)[1]
    ref.pop(info)
    assert ours == ref


def test_content_match_relinks_an_older_version_like_distman(pair, tmp_path, capsys) -> None:
    both(pair, tmp_path, capsys, "-y", "-t", "doc")
    for text in ("docs v2\n", "docs v1\n"):
        for repo in pair:
            write(repo / "doc.txt", text)
            commit(repo, text)
        d, f = both(pair, tmp_path, capsys, "-y", "-t", "doc")
        assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    first = commit_of(pair[1]) and ours["dev/share/fixture/doc.txt"][1]
    assert first.startswith("versions/doc.txt.0.")
    # distman's .dist names HEAD, though the link points at version 0: fleetdist names
    # the linked version's commit (issue 12: the .dist file describes the linked version)
    info = "dev/share/fixture/.doc.txt.dist"
    assert f"commit: {first.rsplit('.', 1)[1]}\n" in ours.pop(info)[1]
    ref.pop(info)
    assert ours == ref


def test_rollback_and_reset_move_links_like_distman(pair, tmp_path, capsys) -> None:
    both(pair, tmp_path, capsys, "-y", "-t", "hello")
    for repo in pair:
        write(repo / "bin" / "hello.sh", "#!/bin/sh\necho bye\n", 0o755)
        commit(repo, "bye")
    both(pair, tmp_path, capsys, "-y", "-t", "hello")
    d, f = both(pair, tmp_path, capsys, "-n", "-1", "-t", "hello")
    assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    assert ours["dev/bin/hello"][1].startswith("versions/hello.0.")
    assert ours["dev/bin/hello"] == ref["dev/bin/hello"]
    d, f = both(pair, tmp_path, capsys, "--reset", "-t", "hello")
    assert (d.code, f.code) == (0, 0)
    ref, ours = trees(pair, tmp_path)
    assert ours["dev/bin/hello"] == ref["dev/bin/hello"]


@pytest.mark.parametrize(
    "args, code",
    [
        (("-n", "x"), 2),
        (("-c", "ab"), 2),
        (("-c", "zzzz"), 1),
        (("-n", "99"), 1),
        (("-n", "0", "--reset"), 1),
        (("-t", "nomatch"), 1),
        (("-s", "-v"), 0),
        (("/nonexistent",), 1),
    ],
)
def test_exit_codes_match_distman(pair, tmp_path, capsys, args, code) -> None:
    both(pair, tmp_path, capsys, "-y")
    d, f = both(pair, tmp_path, capsys, *args)
    assert (d.code, f.code) == (code, code), (d.err, f.err)


def test_outside_git_matches_distman(tmp_path, monkeypatch, capsys) -> None:
    isolate(monkeypatch, tmp_path)
    pair = (tmp_path / "a" / "repo", tmp_path / "b" / "repo")
    for repo in pair:
        write(
            repo / "dist.json",
            '{"targets": {"f": {"source": "f.txt", "destination": "{DEPLOY_ROOT}/f"}}}',
        )
        write(repo / "f.txt", "one\n")
        write(repo / "distman.env", DISTMAN_ENV)
    for _ in range(2):  # the second run finds the equal version: no new one
        d, f = both(pair, tmp_path, capsys, "-y")
        assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    assert ours["dev/f"] == ("l", "versions/f.0")
    assert ours == ref


def test_delete_and_version_only_match_distman(pair, tmp_path, capsys) -> None:
    both(pair, tmp_path, capsys, "-y")
    for repo in pair:
        write(repo / "bin" / "hello.sh", "#!/bin/sh\necho 2\n", 0o755)
        commit(repo, "two")
    d, f = both(pair, tmp_path, capsys, "-y", "--version-only", "-t", "hello")
    assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    # distman rewrites .hello.dist to name the new, unlinked commit; fleetdist leaves it
    info = "dev/bin/.hello.dist"
    assert ours.pop(info) != ref.pop(info)
    assert ours == ref
    d, f = both(pair, tmp_path, capsys, "--delete", "-y", "-t", "pk", "hello")
    assert (d.code, f.code) == (0, 0), (d.err, f.err)
    ref, ours = trees(pair, tmp_path)
    assert ours == ref
    assert "dev/bin/versions" in ours and not any(p.startswith("dev/bin/versions/") for p in ours)
