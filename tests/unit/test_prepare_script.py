"""The prepare script's upload check, run here with `sh` (no SSH needed for the shell logic)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from fleetdist.release import steps
from fleetdist.release.layout import MARKER, ReleaseLayout
from fleetdist.release.lease import LockSpec
from fleetdist.release.steps import Ledgers

LOCK = LockSpec(run_id="r1", holder="me")
LEDGERS = Ledgers(*[("{", ",", "}")] * 3)


def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = b"print('hello')\n"
        info = tarfile.TarInfo("app.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def prepare(
    tmp_path: Path, art: Path, sha: str, path_dirs: list[Path]
) -> subprocess.CompletedProcess[str]:
    layout = ReleaseLayout(str(tmp_path / "root"))
    ctx = steps.Context(layout=layout, app="app", release_id="1.0")
    upload = steps.Upload(layout.incoming("1.0.tar.gz"), sha, "tar.gz")
    env = {**os.environ, "PATH": os.pathsep.join([*map(str, path_dirs), os.environ["PATH"]])}
    with art.open("rb") as feed:
        return subprocess.run(
            ["sh", "-c", steps.prepare(ctx, LOCK, upload, ledgers=LEDGERS).text],
            stdin=feed, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip


def no_openssl(tmp_path: Path) -> Path:
    """A PATH entry whose `openssl` fails, as on a host where it is broken."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "openssl").write_text("#!/bin/sh\nexit 1\n")
    (stub / "openssl").chmod(0o755)
    return stub


@pytest.mark.parametrize("openssl", [True, False], ids=["openssl", "sha256sum"])
def test_upload_is_staged_only_if_its_sha256_matches(tmp_path: Path, openssl: bool) -> None:
    art = artifact(tmp_path)
    good = hashlib.sha256(art.read_bytes()).hexdigest()
    dirs = [] if openssl else [no_openssl(tmp_path)]
    root = tmp_path / "root"

    bad = prepare(tmp_path, art, "0" * 64, dirs)
    assert bad.returncode == 1
    assert f"sha256 mismatch: uploaded {good}, expected {'0' * 64}" in bad.stderr
    assert not (root / "releases" / "1.0").exists()
    assert list((root / ".fleetdist" / "incoming").iterdir()) == []

    ok = prepare(tmp_path, art, good, dirs)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-3:] == [steps.SEND, steps.RECEIVED, steps.STAGED]
    assert (root / "releases" / "1.0" / MARKER).read_text() == f"1.0 {good}\n"
    assert (root / "releases" / "1.0" / "app.py").exists()


def test_the_marker_is_never_written_through_a_link(tmp_path: Path) -> None:
    """Second guard behind the canonical tar: even an upload holding a `.fleetdist-release`
    symlink cannot make the host write the marker outside the release."""
    outside = tmp_path / "authorized_keys"
    outside.write_text("ssh-ed25519 AAAA legit\n")
    art = tmp_path / "evil.tar.gz"
    with tarfile.open(art, "w:gz") as tar:
        link = tarfile.TarInfo(MARKER)
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
    done = prepare(tmp_path, art, hashlib.sha256(art.read_bytes()).hexdigest(), [])
    assert done.returncode == 1
    assert "reserved for fleetdist" in done.stderr
    assert outside.read_text() == "ssh-ed25519 AAAA legit\n"
    assert not (tmp_path / "root" / "releases" / "1.0").exists()


def test_a_host_without_flock_is_told_so_in_one_line(tmp_path: Path) -> None:
    """Checked on first contact, before anything is written: README lists what hosts need."""
    layout = ReleaseLayout(str(tmp_path / "root"))
    ctx = steps.Context(layout=layout, app="app", release_id="1.0")
    upload = steps.Upload(layout.incoming("1.0.tar.gz"), "ab", "tar.gz")
    text = steps.prepare(ctx, LOCK, upload, ledgers=LEDGERS).text
    bare = tmp_path / "bin"
    bare.mkdir()
    done = subprocess.run(
        ["/bin/sh", "-c", text], env={"PATH": str(bare)}, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr == (
        "this host has no 'flock' command, which fleetdist needs (see README: Host requirements)\n"
    )
    assert not (tmp_path / "root").exists()
