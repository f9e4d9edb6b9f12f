"""`shared:` paths survive deploys, rollbacks and prunes, and the in-place tests see them."""

from __future__ import annotations

import os

from .conftest import HOSTS, Project


def shared_recipe(project: Project) -> None:
    project.write_recipe(
        keep=2,
        shared={"dirs": ["log", "data/uploads"], "files": [".env", "conf/app.ini"]},
        test=[
            'test -f hello/__init__.py && test "$HELLO_GREETING" = hello',
            "test -d log && test -d data/uploads && test -f .env && test -f conf/app.ini",
            'echo "$FLEETDIST_RELEASE" >> log/seen',
        ],
    )


def test_shared_paths_outlive_every_release(project: Project) -> None:
    shared_recipe(project)
    (project.app_dir / "log").mkdir()
    (project.app_dir / "log" / "shipped.txt").write_text("from the artifact\n")
    ids = []
    for tag in ("v1", "v2", "v3"):
        project.bump(tag)
        ids.append(project.deploy())
    assert project.run("rollback").code == 0
    for host in HOSTS:
        root = project.host_root(host)
        shared = root / "shared"
        assert ids[0] not in project.releases(host), "pruned (keep 2)"
        assert (shared / "log" / "seen").read_text().split() == ids
        for rid in ids[1:]:
            release = root / "releases" / rid
            assert os.readlink(release / "log") == str(shared / "log")
            assert os.readlink(release / "data" / "uploads") == str(shared / "data" / "uploads")
            assert os.readlink(release / "conf" / "app.ini") == str(shared / "conf" / "app.ini")
            assert (release / ".env").resolve() == (shared / ".env").resolve()
        assert not (shared / "log" / "shipped.txt").exists(), "the release's own log/ gave way"
        assert project.current(host) == ids[1]


def test_shared_paths_are_in_the_dry_run(project: Project) -> None:
    shared_recipe(project)
    plan = project.run("plan")
    assert plan.code == 0, plan.err
    assert "share_dir log\nshare_dir data/uploads\nshare_file .env\n" in plan.out


def test_shared_paths_must_stay_inside_the_release(project: Project) -> None:
    for bad in ("../x", "/etc", "a//b", ".fleetdist-tested", "a\nb"):
        project.write_recipe(shared={"dirs": [bad]})
        result = project.run("plan")
        assert result.code == 2, bad
        assert "shared.dirs[0]" in result.err, result.err
    project.write_recipe(shared={"dirs": ["log"], "files": ["log"]})
    assert "listed twice" in project.run("plan").err


def test_odd_shared_names_stay_literal(project: Project) -> None:
    odd = "it's $(touch PWNED) `x`"
    project.write_recipe(shared={"dirs": [odd]})
    rid = project.deploy("-H", "web01")
    release = project.host_root("web01") / "releases" / rid
    assert (release / odd).is_symlink()
    assert not list(project.root.parent.rglob("PWNED"))
