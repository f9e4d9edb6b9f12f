"""Archive artifacts over real SSH: hosts (as root) unpack fleetdist's canonical tar, nothing else.

Each test rewrites the project's own tar.gz with hostile members and
deploys it with `--artifact`, then looks at the hosts through docker exec.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from fleetdist.shipping.artifact import Artifact, file_sha256, write_meta

from .fleet import WEB, Fleet
from .project import Project

pytestmark = pytest.mark.integration

ROOT = "/srv/apps/hello"


@pytest.fixture
def project(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("HELLO_VERSION", "1.0.0")
    return Project(tmp_path / "project", fleet.inventory(tmp_path, services=WEB[:2]))


def rewritten(
    project: Project, name: str, extra: list[tuple[tarfile.TarInfo, bytes]], raw: bytes = b""
) -> Artifact:
    """The project's built tar.gz plus `extra` members and `raw` header blocks, with its meta."""
    assert project.run("build", "--formats", "tar.gz") == 0
    [row] = json.loads((project.root / "dist" / "artifacts.json").read_text())
    built = project.root / "dist" / row["file"]
    buf = io.BytesIO()
    with (
        tarfile.open(built) as src,
        tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out,
    ):
        for info in src:
            out.addfile(info, src.extractfile(info) if info.isfile() else None)
        for info, data in extra:
            out.addfile(info, io.BytesIO(data))
        out.fileobj.write(raw)  # blocks no tarfile writer would produce
        out.offset += len(raw)
    path = project.root / "evil" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(gzip.compress(buf.getvalue(), mtime=0))
    art = Artifact(path, "hello", "1.0.0", row["release_id"], "tar.gz", file_sha256(path), 0)
    write_meta(art)
    return art


def member(
    name: str, mode: int, kind: bytes = tarfile.REGTYPE, data: bytes = b""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.uid, info.uname = kind, mode, len(data), 4242, "mallory"
    return info, data


def test_set_id_and_world_writable_modes_are_normalised_on_the_host(
    fleet: Fleet, project: Project
) -> None:
    art = rewritten(
        project,
        "modes.tar.gz",
        [
            member("bin/", 0o1777, tarfile.DIRTYPE),
            member("bin/setuid-shell", 0o4777, data=b"#!/bin/sh\nid\n"),
            member("bin/setgid-data", 0o2664, data=b"data\n"),
            member("bin/world-writable", 0o666, data=b"anyone\n"),
        ],
    )
    assert project.run("deploy", "--artifact", str(art.path)) == 0
    release = f"{ROOT}/releases/{art.release_id}"
    for host in WEB[:2]:
        out = fleet.exec(host, f"cd {release}/bin && stat -c '%n %a %U:%G' . * | sort")
        assert out.stdout.splitlines() == [
            ". 755 root:root",
            "setgid-data 644 root:root",
            "setuid-shell 755 root:root",
            "world-writable 644 root:root",
        ], out.stderr
        marker = fleet.exec(host, f"cat {release}/.fleetdist-release").stdout
        assert marker == f"{art.release_id} {art.sha256}\n", "the marker names the artifact's sha"


def test_prefix_field_attack_is_refused_before_any_host_is_touched(
    fleet: Fleet, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python reads the name as `a/b/c/d/e/f/.fleetdist-release`, GNU tar as `.fleetdist-release`.

    So the link's target stays inside the release for the one and climbs
    out of it for the other: the marker write would follow it.
    """
    link = tarfile.TarInfo(".fleetdist-release")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../../../../etc/cron.d/fleetdist-pwned"
    block = bytearray(link.tobuf(tarfile.GNU_FORMAT))
    block[345:356] = b"a/b/c/d/e/f"  # the ustar prefix field, in a GNU-magic header
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    art = rewritten(project, "prefix.tar.gz", [], raw=bytes(block))
    capsys.readouterr()
    assert project.run("deploy", "--artifact", str(art.path)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fleetdist: error: {art.path}: member 'a/b/c/d/e/f/.fleetdist-release' has a ustar prefix "
        "in a GNU or V7 header (tar implementations disagree on its name)"
    )
    for host in WEB[:2]:
        assert fleet.exec(host, "ls -A /srv").stdout == "", "no host may be touched"
