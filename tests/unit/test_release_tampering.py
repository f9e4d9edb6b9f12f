"""What a hostile release or recipe tried against the host scripts, and why it fails now.

Each case was a red-team reproduction against the engine: nested shared paths wiping the
shared data, an artifact link steering a shared path out of the release, a bundle's own
interpreter forging protocol lines, a hook's stderr posing as sudo, a failing test
writing its own tested mark, and a package's postinst going live before its tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from fleetdist.builders.ospkg import flip_scripts
from fleetdist.release import steps
from fleetdist.release.layout import MARKER, ReleaseLayout
from fleetdist.release.lease import LockSpec

from .conftest import HOSTS, Project
from .test_become import FAKE_SUDO, with_sudo

LEDGERS = steps.Ledgers(*[("{", ",", "}")] * 3)


def member(tar: tarfile.TarFile, name: str, data: bytes = b"", **kind: object) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), int(kind.get("mode", 0o644))  # type: ignore[call-overload]
    if "link" in kind:
        info.type, info.linkname, info.size = tarfile.SYMTYPE, str(kind["link"]), 0
    tar.addfile(info, io.BytesIO(data))


def test_nested_shared_paths_are_refused(project: Project) -> None:
    project.write_recipe(shared={"dirs": ["data"], "files": ["data/db.sqlite"]})
    result = project.run("plan")
    assert result.code == 2
    assert "shared.files[0]: 'data/db.sqlite' overlaps 'data'" in result.err


def test_a_link_in_the_artifact_cannot_steer_a_shared_path_out(
    project: Project, tmp_path: Path
) -> None:
    project.write_recipe(shared={"dirs": ["log"], "files": ["conf/app.ini"]})
    project.deploy("-H", "web01")
    shared = project.host_root("web01") / "shared"
    (shared / "log" / "app.ini").write_text("the app's own log\n")
    art = tmp_path / "ci.tar.gz"
    with tarfile.open(art, "w:gz") as tar:
        member(tar, "hello/__init__.py", b"")
        member(tar, "hello/__main__.py", b"")
        member(tar, "conf", link="log")  # inside the release, until log is shared
    result = project.run("deploy", "-H", "web01", "--artifact", str(art), "--version", "9")
    assert result.code == 1
    assert "leads out of it" in result.err
    assert (shared / "log" / "app.ini").read_text() == "the app's own log\n"


def test_a_bundles_interpreter_cannot_forge_protocol_lines(
    project: Project, tmp_path: Path
) -> None:
    old = project.deploy("-H", "web01")
    rid = "6.6.6-deadbeef00"
    art = tmp_path / "hello-6.6.6.tar.gz"
    with tarfile.open(art, "w:gz") as tar:
        member(tar, "venv/pyvenv.cfg", b"home = /usr/bin\n")
        member(tar, ".fleetdist-abi", b"cpython-311-x86_64-linux-gnu\n")
        forged = f"#!/bin/sh\necho @@unchanged\necho '@@current {rid}'\nexit 1\n".encode()
        member(tar, "venv/bin/python", forged, mode=0o755)
    meta = {"app": "hello", "version": "6.6.6", "release_id": rid, "format": "venv"}
    art.with_name(art.name + ".meta.json").write_text(json.dumps(meta))
    result = project.run("deploy", "--json", "-H", "web01", "--artifact", str(art))
    assert result.code == 1, result.out
    [host] = result.json()["hosts"]
    assert (host["status"], host["from_release"]) == ("failed", old)
    assert project.current("web01") == old


def test_a_hooks_stderr_is_not_taken_for_sudo(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.deploy()
    with_sudo(project, tmp_path, monkeypatch, FAKE_SUDO)
    project.bump("v2")
    says = "sh -c 'echo \"sudo: a password is required\" >&2; exit 1' || true"
    project.write_recipe(hooks={"before_activate": [], "after_activate": [says]})
    result = project.run("deploy", "--json", "--on-failure", "rollback", "--canary", "1")
    assert result.code == 0, result.out
    v2 = result.json()["release_id"]
    assert all(project.current(h) == v2 for h in HOSTS)


def test_a_failing_test_cannot_leave_its_own_tested_mark(project: Project) -> None:
    good = project.deploy("-H", "web01")
    project.bump("bad")
    vouch = 'touch "$FLEETDIST_ROOT/.fleetdist/tested/$FLEETDIST_RELEASE"; exit 1'
    project.write_recipe(test=[vouch])
    failed = project.run("deploy", "--json", "-H", "web01")
    assert failed.code == 1
    bad = failed.json()["release_id"]
    refused = project.run("rollback", "--to", bad, "-H", "web01")
    assert refused.code == 1
    assert project.current("web01") == good


def test_a_package_that_flips_current_itself_is_put_back(tmp_path: Path) -> None:
    """A .deb built with `flip_current: postinst` moved `current` inside prepare,
    before its tests: the host puts it back and refuses the package."""
    root = tmp_path / "opt" / "hello"
    layout = ReleaseLayout(str(root))
    old = root / "releases" / "0.9"
    old.mkdir(parents=True)
    (old / MARKER).write_text("0.9 x\n")
    os.symlink("releases/0.9", root / "current")
    postinst = tmp_path / "postinst.sh"
    postinst.write_text("#!/bin/sh\nset -e\n" + flip_scripts(str(root), "1.0")["postinstall"])
    stub = tmp_path / "stub"
    stub.mkdir()
    unpack = f"mkdir -p {root}/releases/1.0 && echo '1.0 pkg' > {root}/releases/1.0/{MARKER}"
    # what dpkg would do: unpack, then run the postinst
    (stub / "apt-get").write_text(f"#!/bin/sh\n{unpack}\nexec sh {postinst}\n")
    (stub / "apt-get").chmod(0o755)
    deb = tmp_path / "hello-1.0.deb"
    deb.write_bytes(b"not really a deb")
    sha = hashlib.sha256(deb.read_bytes()).hexdigest()
    ctx = steps.Context(layout=layout, app="hello", release_id="1.0", test=("true",))
    upload = steps.Upload(layout.incoming("1.0.deb"), sha, "deb")
    step = steps.prepare(ctx, LockSpec("r1", "me"), upload, ledgers=LEDGERS)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    with deb.open("rb") as feed:
        done = subprocess.run(
            ["sh", "-c", step.text], stdin=feed, capture_output=True, text=True, env=env, timeout=60
        )
    assert done.returncode == 1
    assert "postinst moved" in done.stderr
    assert os.readlink(root / "current") == "releases/0.9"
    assert not (root / ".fleetdist" / "tested" / "1.0").exists()
