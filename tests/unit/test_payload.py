"""What hosts are sent: a tar.gz as it is, or inflated when gzip barely shrank it."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from fleetdist.build.artifact import Artifact, file_sha256
from fleetdist.build.payload import shipped
from fleetdist.errors import ArtifactError

from .conftest import HOSTS, Project


def tar_gz(
    path: Path, members: dict[str, bytes], *, bad: tarfile.TarInfo | None = None
) -> Artifact:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if bad is not None:
            tar.addfile(bad)
    return artifact(path, "tar.gz")


def artifact(path: Path, fmt: str) -> Artifact:
    return Artifact(path, "app", "1", "1-abc", fmt, file_sha256(path), path.stat().st_size)


def test_incompressible_tar_gz_is_sent_as_its_plain_tar(tmp_path: Path) -> None:
    art = tar_gz(tmp_path / "a.tar.gz", {"blob.bin": os.urandom(300_000), "app.py": b"x = 1\n"})
    plain = gzip.decompress(art.path.read_bytes())
    with shipped(art) as payload:
        assert payload.format == "tar"
        assert payload.path != art.path
        assert payload.path.read_bytes() == plain
        assert payload.sha256 == hashlib.sha256(plain).hexdigest()
    assert not payload.path.exists(), "the plain tar is temporary"


def test_compressible_tar_gz_is_sent_as_it_is(tmp_path: Path) -> None:
    art = tar_gz(tmp_path / "a.tar.gz", {"app.py": b"print('hello')\n" * 20_000})
    with shipped(art) as payload:
        assert (payload.path, payload.sha256, payload.format) == (art.path, art.sha256, "tar.gz")


def test_no_room_for_the_plain_tar_sends_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inflating only saves the hosts work: a full temp directory must not fail the deploy."""

    class Full(io.BytesIO):
        name = str(tmp_path / "full.tar")

        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda **_: Full())
    art = tar_gz(tmp_path / "a.tar.gz", {"blob.bin": os.urandom(300_000)})
    with shipped(art) as payload:
        assert (payload.path, payload.sha256, payload.format) == (art.path, art.sha256, "tar.gz")


def test_deb_is_sent_as_it_is_unread(tmp_path: Path) -> None:
    deb = tmp_path / "app.deb"
    deb.write_bytes(b"!<arch>\nnot checked here")
    art = artifact(deb, "deb")
    with shipped(art) as payload:
        assert (payload.path, payload.sha256, payload.format) == (deb, art.sha256, "deb")


@pytest.mark.parametrize("blob", [b"", os.urandom(300_000)], ids=["compressible", "inflated"])
def test_unsafe_member_is_refused_naming_the_artifact(tmp_path: Path, blob: bytes) -> None:
    escape = tarfile.TarInfo("../../etc/cron.d/x")
    art = tar_gz(tmp_path / "a.tar.gz", {"blob.bin": blob}, bad=escape)
    refused = r"a\.tar\.gz: member '\.\./\.\./etc/cron\.d/x'"
    with pytest.raises(ArtifactError, match=refused), shipped(art):
        pass


@pytest.mark.parametrize("data", [b"not gzip at all", None], ids=["garbage", "truncated"])
def test_unreadable_tar_gz_is_refused(tmp_path: Path, data: bytes | None) -> None:
    path = tmp_path / "a.tar.gz"
    if data is None:  # a real tar.gz of random bytes, cut short
        tar_gz(path, {"blob.bin": os.urandom(300_000)})
        data = path.read_bytes()[:150_000]
    path.write_bytes(data)
    unreadable = r"a\.tar\.gz: not a readable tar archive"
    with pytest.raises(ArtifactError, match=unreadable), shipped(artifact(path, "tar.gz")):
        pass


def test_incompressible_app_deploys_from_its_plain_tar(project: Project) -> None:
    """Unpacked with `tar -xf` on every host; the marker still names the artifact's sha256."""
    blob = os.urandom(400_000)
    (project.app_dir / "hello" / "blob.bin").write_bytes(blob)
    plan = project.run("deploy", "--dry-run")
    assert plan.code == 0, plan.err
    assert ".tar.gz, inflated to a plain tar (sent only after" in plan.out
    assert "\nunpack_tar\n" in plan.out and "unpack_tar z" not in plan.out
    rid = project.deploy()
    [art] = (project.root / "dist").glob(f"*{rid}*.tar.gz")
    for host in HOSTS:
        release = project.host_root(host) / "releases" / rid
        assert (release / "hello" / "blob.bin").read_bytes() == blob
        assert (release / ".fleetdist-release").read_text() == f"{rid} {file_sha256(art)}\n"
        assert list((project.host_root(host) / ".fleetdist" / "incoming").iterdir()) == []
