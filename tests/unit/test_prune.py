"""Keep-N pruning: never `current`, never the release a rollback would go back to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetdist.release.layout import MARKER
from fleetdist.release.steps import Facts, parse_facts, prune_candidates

from .conftest import HOSTS, Project


def facts(*ids: str, current: str | None = None, previous: str | None = None) -> Facts:
    """Facts with `ids` staged newest first."""
    n = len(ids)
    return Facts(current, previous, tuple((rid, 1000 + n - i) for i, rid in enumerate(ids)))


def test_keeps_target_and_the_release_it_replaces() -> None:
    # v4 was just staged; v3 is live; v2 was v3's predecessor.
    f = facts("v4", "v3", "v2", "v1", current="v3", previous="v2")
    assert prune_candidates(f, "v4", keep=2) == ["v2", "v1"]


def test_keep_larger_than_what_is_there_prunes_nothing() -> None:
    f = facts("v3", "v2", "v1", current="v2", previous="v1")
    assert prune_candidates(f, "v3", keep=5) == []
    assert prune_candidates(Facts(), "v1", keep=2) == []


def test_first_deploy_has_nothing_to_prune() -> None:
    assert prune_candidates(facts("v1"), "v1", keep=2) == []


def test_target_not_yet_listed_counts_first() -> None:
    f = facts("v3", "v2", "v1", current="v3", previous="v2")
    assert prune_candidates(f, "v4", keep=2) == ["v2", "v1"]


def test_current_is_kept_even_when_it_is_the_oldest() -> None:
    """After a rollback to an old release, deploying keeps that old `current`."""
    f = facts("v5", "v4", "v3", "v2", "v1", current="v1", previous="v5")
    assert prune_candidates(f, "v6", keep=2) == ["v5", "v4", "v3", "v2"]
    assert prune_candidates(f, "v6", keep=3) == ["v4", "v3", "v2"]


def test_protected_releases_count_towards_keep() -> None:
    f = facts("v5", "v4", "v3", "v2", "v1", current="v4", previous="v3")
    assert prune_candidates(f, "v6", keep=4) == ["v2", "v1"]
    kept = {"v6", "v5", "v4", "v3", "v2", "v1"} - set(prune_candidates(f, "v6", keep=4))
    assert kept == {"v6", "v5", "v4", "v3"}


def test_a_vanished_previous_takes_no_room() -> None:
    f = facts("v3", "v2", "v1", current="v3", previous="gone")
    assert prune_candidates(f, "v3", keep=2) == ["v1"]


def test_reactivating_the_current_release_keeps_previous() -> None:
    """When nothing flips (target is current), `previous` stays the rollback target."""
    f = facts("v4", "v3", "v2", "v1", current="v2", previous="v1")
    assert prune_candidates(f, "v2", keep=2) == ["v4", "v3"]
    assert prune_candidates(f, "v2", keep=3) == ["v3"]


def test_rolled_back_target_older_than_others() -> None:
    f = facts("v3", "v2", "v1", current="v3", previous="v2")
    assert prune_candidates(f, "v1", keep=2) == ["v2"]


def test_ids_with_spaces_and_dashes_are_just_names() -> None:
    f = facts("-rf x", "1.0 $(x)", "old one", current="1.0 $(x)")
    assert prune_candidates(f, "-rf x", keep=2) == ["old one"]


def test_same_second_releases_order_by_name() -> None:
    staged = [(5, "a"), (5, "c"), (5, "b"), (4, "0-older")]
    lines = [f"@@release {t} releases/{rid}/{MARKER}" for t, rid in staged]
    f = parse_facts("\n".join(["@@current b", *lines]))
    assert f.current == "b"
    assert f.release_ids == ["a", "b", "c", "0-older"]
    assert prune_candidates(f, "d", keep=3) == ["c", "0-older"]


def test_keep_two_after_four_deploys(project: Project) -> None:
    project.write_recipe(keep=2)
    ids = []
    for n in range(4):
        project.bump(f"v{n + 1}")
        ids.append(project.deploy())
    v3, v4 = ids[2:]
    for host in HOSTS:
        assert project.current(host) == v4
        assert project.previous(host) == v3
        assert project.releases(host) == {v3, v4}
    # The rollback target survived, and a second rollback still comes back.
    assert project.run("rollback").code == 0
    assert all(project.current(h) == v3 for h in HOSTS)
    assert project.run("rollback").code == 0
    assert all(project.current(h) == v4 for h in HOSTS)


def test_rollback_never_prunes(project: Project) -> None:
    project.write_recipe(keep=2)
    ids = []
    for n in range(3):
        project.bump(f"v{n + 1}")
        ids.append(project.deploy("-H", "web01"))
    assert project.releases("web01") == set(ids[1:])
    assert project.run("rollback", "-H", "web01").code == 0
    assert project.releases("web01") == set(ids[1:])


def _fake_dpkg(bin_dir: Path, owned: str, log: Path) -> None:
    """A `dpkg` that owns one release's marker and logs purges (the real one is not here)."""
    bin_dir.mkdir()
    script = bin_dir / "dpkg"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n'
        f'  -S) case "$2" in */releases/{owned}/.fleetdist-release) echo "hello-pkg: $2";; '
        "*) exit 1;; esac;;\n"
        f'  --purge) echo "$2" >> {log} || exit 1;;\n'
        "esac\n"
    )
    script.chmod(0o755)


def test_package_installed_release_is_purged_not_just_deleted(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_recipe(keep=2)
    project.bump("v1")
    v1 = project.deploy("-H", "web01")
    log = tmp_path / "purged"
    _fake_dpkg(tmp_path / "bin", v1, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    for tag in ("v2", "v3"):
        project.bump(tag)
        project.deploy("-H", "web01")
    assert log.read_text().split() == ["hello-pkg"]
    assert v1 not in project.releases("web01")


def test_failed_prune_is_a_warning_not_a_failed_deploy(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_recipe(keep=2)
    project.bump("v1")
    v1 = project.deploy("-H", "web01")
    _fake_dpkg(tmp_path / "bin", v1, Path("/nonexistent/dir/log"))  # its --purge fails
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    for tag in ("v2", "v3"):
        project.bump(tag)
        result = project.run("deploy", "--json", "-H", "web01")
        assert result.code == 0, result.err
    assert project.current("web01") == result.json()["release_id"]
    assert v1 in project.releases("web01")  # left in place, with a warning
