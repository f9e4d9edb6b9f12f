"""Reproducible archives and the archive checks (controller side, before any host)."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from fleetdist.builders.archive import DEFAULT_EPOCH
from fleetdist.builders.formats import build_recipe
from fleetdist.config.schema import Recipe, Source
from fleetdist.errors import ArtifactError, ConfigError
from fleetdist.shipping import canonical
from fleetdist.shipping.artifact import Artifact, file_sha256, load_artifact, write_meta
from fleetdist.shipping.safety import Member

from .conftest import Project


def make_tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "data.txt").write_bytes(b"\x00\x01binary\xff")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (root / "link").symlink_to("pkg/__init__.py")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    return root


def recipe_for(tmp_path: Path, source: Path) -> Recipe:
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("app: demo\n")
    return Recipe(
        source_file=str(recipe_file),
        app="demo",
        version="2.0",
        source=Source(source),
        deploy_root="/srv/demo",
    )


def build(recipe: Recipe, out: Path) -> dict[str, Artifact]:
    return {a.format: a for a in build_recipe(recipe, out, ("tar.gz", "zip"))}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")


def test_same_tree_twice_gives_identical_bytes(tmp_path: Path, tree: Path) -> None:
    recipe = recipe_for(tmp_path, tree)
    first, second = build(recipe, tmp_path / "out1"), build(recipe, tmp_path / "out2")
    for fmt in ("tar.gz", "zip"):
        assert first[fmt].path.read_bytes() == second[fmt].path.read_bytes()
        assert first[fmt].sha256 == second[fmt].sha256 == file_sha256(second[fmt].path)
    assert first["tar.gz"].release_id == first["zip"].release_id
    assert first["tar.gz"].release_id.startswith("2.0-")


def test_touching_mtimes_changes_nothing(tmp_path: Path, tree: Path) -> None:
    recipe = recipe_for(tmp_path, tree)
    first = build(recipe, tmp_path / "out1")
    later = time.time() + 3600
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (later, later), follow_symlinks=False)
    second = build(recipe, tmp_path / "out2")
    for fmt in ("tar.gz", "zip"):
        assert first[fmt].path.read_bytes() == second[fmt].path.read_bytes()


def test_changed_byte_gives_new_release_id(tmp_path: Path, tree: Path) -> None:
    recipe = recipe_for(tmp_path, tree)
    first = build(recipe, tmp_path / "out1")
    data = tree / "pkg" / "sub" / "data.txt"
    data.write_bytes(data.read_bytes().replace(b"binary", b"binarz"))
    second = build(recipe, tmp_path / "out2")
    assert first["tar.gz"].release_id != second["tar.gz"].release_id
    assert first["tar.gz"].sha256 != second["tar.gz"].sha256


def test_mode_change_gives_new_release_id(tmp_path: Path, tree: Path) -> None:
    recipe = recipe_for(tmp_path, tree)
    first = build(recipe, tmp_path / "out1")
    (tree / "run.sh").chmod(0o644)
    assert build(recipe, tmp_path / "out2")["tar.gz"].release_id != first["tar.gz"].release_id


def test_archive_contents_are_normalised(tmp_path: Path, tree: Path) -> None:
    artifact = build(recipe_for(tmp_path, tree), tmp_path / "out")["tar.gz"]
    with tarfile.open(artifact.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert "pkg/__pycache__" not in members and "pkg/__pycache__/x.pyc" not in members
    assert members["run.sh"].mode == 0o755 and members["pkg/__init__.py"].mode == 0o644
    assert members["link"].issym() and members["link"].linkname == "pkg/__init__.py"
    assert {(m.uid, m.gid, m.uname, m.mtime) for m in members.values()} == {
        (0, 0, "root", DEFAULT_EPOCH)
    }
    raw = artifact.path.read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip header: no timestamp
    check_tar(artifact.path)  # what we build, we accept


def test_source_date_epoch_is_honoured(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = recipe_for(tmp_path, tree)
    default = build(recipe, tmp_path / "out1")
    epoch = 1_700_000_000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    stamped = build(recipe, tmp_path / "out2")
    with tarfile.open(stamped["tar.gz"].path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {epoch}
    with zipfile.ZipFile(stamped["zip"].path) as zf:
        assert {i.date_time for i in zf.infolist()} == {time.gmtime(epoch)[:6]}
    assert stamped["tar.gz"].sha256 != default["tar.gz"].sha256
    assert stamped["tar.gz"].release_id == default["tar.gz"].release_id  # the tree is the same
    # ...and is reproducible under the same epoch.
    again = build(recipe, tmp_path / "out3")
    assert again["zip"].path.read_bytes() == stamped["zip"].path.read_bytes()


def test_source_date_epoch_before_1980_is_clamped(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    artifact = build(recipe_for(tmp_path, tree), tmp_path / "out")["zip"]
    with zipfile.ZipFile(artifact.path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_zip_keeps_modes_and_links(tmp_path: Path, tree: Path) -> None:
    artifact = build(recipe_for(tmp_path, tree), tmp_path / "out")["zip"]
    with zipfile.ZipFile(artifact.path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert infos["run.sh"].external_attr >> 16 == 0o100755
        assert infos["link"].external_attr >> 16 == 0o120777
        assert zf.read("link") == b"pkg/__init__.py"
        assert zf.read("pkg/sub/data.txt") == b"\x00\x01binary\xff"


def test_unknown_format_is_a_usage_error(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"--formats: unknown format 'exe'"):
        build_recipe(recipe_for(tmp_path, tree), tmp_path / "out", ("exe",))


def test_cli_build_twice_is_identical(project: Project) -> None:
    first = project.run("build", "--json")
    assert first.code == 0, first.err
    artifacts = first.json()["artifacts"]
    assert {a["format"] for a in artifacts} == {"tar.gz", "zip"}
    blobs = {a["format"]: Path(a["path"]).read_bytes() for a in artifacts}
    for a in artifacts:
        Path(a["path"]).unlink()
    second = project.run("build", "--json")
    assert second.code == 0
    assert {a["format"]: Path(a["path"]).read_bytes() for a in second.json()["artifacts"]} == blobs
    assert [a["release_id"] for a in second.json()["artifacts"]] == [
        a["release_id"] for a in artifacts
    ]


# -- the archive checks ----------------------------------------------------------


def check_tar(path: Path) -> list[Member]:
    """The members `canonical.parse` validates in the tar.gz at `path`."""
    with canonical.Spool(None) as spool:
        return canonical.parse(path, file_sha256(path), spool)


def crafted_tar(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("app/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        for member in members:
            data = io.BytesIO(b"x" * member.size) if member.isreg() else None
            tar.addfile(member, data)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


HOSTILE = {
    "dotdot": (member("../x"), "'../x' would unpack outside"),
    "dotdot-inside": (member("app/../../x"), "'app/../../x' would unpack outside"),
    "absolute": (member("/etc/passwd"), "'/etc/passwd' would unpack outside"),
    "symlink-escapes": (
        member("app/link", tarfile.SYMTYPE, "../../etc"),
        "symlink 'app/link' -> '../../etc' escapes",
    ),
    "symlink-absolute": (
        member("link", tarfile.SYMTYPE, "/etc/shadow"),
        "symlink 'link' -> '/etc/shadow' escapes",
    ),
    "hardlink-escapes": (
        member("app/hard", tarfile.LNKTYPE, "../../etc/passwd"),
        "hard link 'app/hard' -> '../../etc/passwd' escapes",
    ),
    "hardlink-absolute": (
        member("hard", tarfile.LNKTYPE, "/etc/passwd"),
        "hard link 'hard' -> '/etc/passwd' escapes",
    ),
    "char-device": (member("app/null", tarfile.CHRTYPE), "'app/null' is a device"),
    "block-device": (member("app/sda", tarfile.BLKTYPE), "'app/sda' is a device"),
    "fifo": (member("app/pipe", tarfile.FIFOTYPE), "'app/pipe' is a device, fifo"),
}


@pytest.mark.parametrize(("bad", "message"), HOSTILE.values(), ids=list(HOSTILE))
def test_check_tar_refuses(tmp_path: Path, bad: tarfile.TarInfo, message: str) -> None:
    path = crafted_tar(tmp_path / "evil.tar.gz", bad)
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(")) as info:
        check_tar(path)
    assert str(path) in str(info.value)


def test_check_tar_accepts_links_that_stay_inside(tmp_path: Path) -> None:
    path = crafted_tar(
        tmp_path / "fine.tar.gz",
        member("app/dir", tarfile.DIRTYPE),
        member("app/dir/up", tarfile.SYMTYPE, "../ok.txt"),
        member("app/hard", tarfile.LNKTYPE, "app/ok.txt"),
        member("./app/dotted.txt"),
    )
    assert [m.name for m in check_tar(path)] == [
        "app",
        "app/dir",
        "app/dotted.txt",
        "app/ok.txt",
        "app/dir/up",
        "app/hard",
    ]


def test_check_tar_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "junk.tar.gz"
    path.write_bytes(b"\x1f\x8bnot really")
    with pytest.raises(ArtifactError, match="not a readable tar archive"):
        check_tar(path)


def crafted_artifact(tmp_path: Path, bad: tarfile.TarInfo, app: str = "hello") -> Path:
    folder = tmp_path / "evil"
    folder.mkdir()
    path = crafted_tar(folder / f"{app}-1.0.0-evil.tar.gz", bad)
    write_meta(
        Artifact(path, app, "1.0.0", "1.0.0-evil", "tar.gz", file_sha256(path), path.stat().st_size)
    )
    return path


def test_load_artifact_reads_meta(tmp_path: Path) -> None:
    path = crafted_artifact(tmp_path, member("app/x"))
    artifact = load_artifact(path, app="hello")
    assert (artifact.release_id, artifact.format, artifact.version) == (
        "1.0.0-evil",
        "tar.gz",
        "1.0.0",
    )
    with pytest.raises(ArtifactError, match="built for app 'hello', not 'other'"):
        load_artifact(path, app="other")
    path.with_name(path.name + ".meta.json").unlink()
    with pytest.raises(ArtifactError, match="missing or unreadable artifact metadata"):
        load_artifact(path, app="hello")


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink-escapes", "char-device"])
def test_deploy_refuses_crafted_artifact_before_touching_hosts(
    project: Project, tmp_path: Path, case: str
) -> None:
    bad, message = HOSTILE[case]
    path = crafted_artifact(tmp_path, bad)
    result = project.run("deploy", "--artifact", str(path))
    assert result.code == 2, result.err + result.out
    line = result.err.strip()
    assert "\n" not in line
    assert line.startswith(f"fleetdist: error: {path}: ")
    assert message in line
    assert not project.fleet.exists(), "no host may be touched"
    assert not (project.root / ".fleetdist" / "runs").exists()
    assert not list((project.root / ".fleetdist").rglob("*.tar*")), "no payload of it is kept"


def test_plan_refuses_crafted_artifact_too(project: Project, tmp_path: Path) -> None:
    path = crafted_artifact(tmp_path, HOSTILE["hardlink-escapes"][0])
    result = project.run("plan", "--artifact", str(path))
    assert result.code == 2
    assert "hard link" in result.err


def test_deploy_artifact_for_another_app_is_refused(project: Project, tmp_path: Path) -> None:
    path = crafted_artifact(tmp_path, member("app/x"), app="other")
    result = project.run("deploy", "--artifact", str(path))
    assert result.code == 2
    assert "built for app 'other', not 'hello'" in result.err
    assert not project.fleet.exists()
