"""Deploying what CI built: archives fleetdist did not build, with no `.meta.json`.

The tarballs are made with the system's plain `tar`, as a CI job would,
then deployed to the local fleet, checked on the hosts and rolled back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fleetdist.shipping.artifact import file_sha256

from .conftest import HOSTS, Project


def ci_tarball(project: Project, name: str, flag: str = "-z") -> Path:
    """`tar` of the app's source as a CI job would make it: ./-prefixed names, its owner."""
    out = project.root / "ci" / name
    out.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["tar", flag, "-cf", str(out), "-C", str(project.app_dir), "--exclude=__pycache__", "."],
        check=True,
    )
    return out


def test_plain_tar_with_a_version_deploys_and_rolls_back(project: Project) -> None:
    v1 = project.deploy()
    tarball = ci_tarball(project, "hello-ci.tar.gz")
    result = project.run("deploy", "--json", "--artifact", str(tarball), "--version", "2.0.0")
    assert result.code == 0, result.err
    rid = result.json()["release_id"]
    assert rid == f"2.0.0-{file_sha256(tarball)[:10]}"
    for host in HOSTS:
        assert project.current(host) == rid
        assert (project.host_root(host) / "current" / "hello" / "__main__.py").is_file()
        assert project.previous(host) == v1
    assert project.run("rollback").code == 0
    assert {project.current(h) for h in HOSTS} == {v1}
    again = project.run("deploy", "--json", "--artifact", str(tarball), "--version", "2.0.0")
    assert again.code == 0 and again.json()["release_id"] == rid, "same bytes, same id"


@pytest.mark.parametrize(("flag", "name"), [("-j", "ci.tbz"), ("-J", "ci.archive"), ("", "ci.tar")])
def test_compression_is_read_from_the_bytes_not_the_name(
    project: Project, flag: str, name: str
) -> None:
    tarball = ci_tarball(project, name, flag or "--no-auto-compress")
    result = project.run("deploy", "--json", "--artifact", str(tarball), "--release", "ci-build-7")
    assert result.code == 0, result.err
    assert {project.current(h) for h in HOSTS} == {"ci-build-7"}


def test_a_foreign_archive_without_a_flag_says_what_to_give(project: Project) -> None:
    tarball = ci_tarball(project, "hello.tgz")
    result = project.run("deploy", "--artifact", str(tarball))
    assert result.code == 2
    assert "has no hello.tgz.meta.json" in result.err and "--release ID" in result.err
    assert not project.host_root("web01").exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--release", "../escape"), ("--release", "-x"), ("--version", "1 0")]
)
def test_a_bad_release_or_version_is_refused_before_any_host(
    project: Project, flag: str, value: str
) -> None:
    tarball = ci_tarball(project, "hello.tgz")
    result = project.run("deploy", "--artifact", str(tarball), f"{flag}={value}")
    assert result.code == 2, result.err
    assert f"{flag}: {value!r} cannot be a release id" in result.err
    assert not project.host_root("web01").exists()


def test_release_flags_need_an_artifact_fleetdist_did_not_build(project: Project) -> None:
    assert project.run("deploy", "--release", "r1").code == 2
    built = project.run("build", "--json", "--formats", "tar.gz").json()["artifacts"][0]["path"]
    result = project.run("deploy", "--artifact", built, "--release", "r1")
    assert result.code == 2 and "already has" in result.err


def test_a_foreign_archive_goes_through_the_same_member_checks(project: Project) -> None:
    evil = project.root / "evil"
    (evil / "app").mkdir(parents=True)
    (evil / "app" / "link").symlink_to("/etc")
    tarball = project.root / "evil.tar.xz"
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(evil / "app"), "link"], check=True)
    result = project.run("deploy", "--artifact", str(tarball), "--version", "1.0.0")
    assert result.code != 0 and "escapes the release" in result.err
    assert not project.host_root("web01").exists()


def test_import_writes_the_metadata_once_then_deploy_needs_no_flag(project: Project) -> None:
    tarball = ci_tarball(project, "hello-ci.tar.bz2", "-j")
    result = project.run("import", "--json", str(tarball), "--version", "3.1")
    assert result.code == 0, result.err
    [row] = result.json()["artifacts"]
    assert (row["format"], row["version"]) == ("tar.bz2", "3.1")
    meta = json.loads(tarball.with_name(tarball.name + ".meta.json").read_text())
    assert meta["release_id"] == row["release_id"] == f"3.1-{file_sha256(tarball)[:10]}"
    again = project.run("import", str(tarball), "--version", "3.2")
    assert again.code == 2 and "exists already" in again.err
    deployed = project.run("deploy", "--json", "--artifact", str(tarball))
    assert deployed.code == 0, deployed.err
    assert deployed.json()["release_id"] == row["release_id"]


def test_an_imported_archive_whose_bytes_changed_is_refused(project: Project) -> None:
    tarball = ci_tarball(project, "hello-ci.tgz")
    assert project.run("import", str(tarball), "--release", "ci-1").code == 0
    (project.app_dir / "NEW").write_text("changed\n")
    tarball.write_bytes(ci_tarball(project, "other.tgz").read_bytes())
    result = project.run("deploy", "--artifact", str(tarball))
    assert result.code == 2 and "changed since `fleetdist import`" in result.err
    assert not project.host_root("web01").exists()


def test_import_refuses_an_unsafe_archive_and_writes_nothing(project: Project) -> None:
    evil = project.root / "evil"
    evil.mkdir()
    (evil / "up").symlink_to("../../etc")
    tarball = project.root / "evil.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(evil), "up"], check=True)
    result = project.run("import", str(tarball), "--version", "1.0")
    assert result.code != 0 and str(tarball) in result.err
    assert not tarball.with_name("evil.tar.meta.json").exists()
