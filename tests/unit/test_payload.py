"""What hosts are sent: fleetdist's canonical tar of an archive, from a cache under the project.

The canonical tar goes plain when gzip barely shrinks it, gzipped (by us)
otherwise; a `.deb` goes as it is.  Payloads are cached by the artifact's
sha256, reused without parsing again, and whatever a killed run left
behind is removed by the next one.
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from fleetdist.errors import ArtifactError
from fleetdist.shipping import canonical, payload
from fleetdist.shipping.artifact import Artifact, file_sha256
from fleetdist.shipping.payload import preview, shipped

from .conftest import HOSTS, Project


def tar_gz(
    path: Path, members: dict[str, bytes], *, bad: tarfile.TarInfo | None = None
) -> Artifact:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uname = "builder"
            tar.addfile(info, io.BytesIO(data))
        if bad is not None:
            tar.addfile(bad)
    return artifact(path, "tar.gz")


def artifact(path: Path, fmt: str) -> Artifact:
    return Artifact(path, "app", "1", "1-abc", fmt, file_sha256(path), path.stat().st_size)


def contents(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_incompressible_tar_gz_is_sent_as_a_canonical_plain_tar(tmp_path: Path) -> None:
    files = {"blob.bin": os.urandom(300_000), "app.py": b"x = 1\n"}
    art = tar_gz(tmp_path / "a.tar.gz", files)
    with shipped(art, tmp_path / "cache") as sent:
        assert sent.format == "tar"
        assert sent.path.parent == tmp_path / "cache"
        assert sent.path.name.startswith(f"{art.sha256}.v{canonical.VERSION}.{sent.sha256}")
        assert sent.sha256 == file_sha256(sent.path) != art.sha256
        assert contents(sent.path) == files
        with tarfile.open(sent.path) as tar:
            assert {(m.uname, m.uid) for m in tar} == {("", 0)}, "not the artifact's own headers"
        assert sent.note == "re-serialised by fleetdist as a canonical plain tar"
    assert sent.path.exists(), "kept for the next run of the same artifact"


def test_compressible_tar_gz_is_sent_as_our_own_gzip(tmp_path: Path) -> None:
    files = {"app.py": b"print('hello')\n" * 20_000}
    art = tar_gz(tmp_path / "a.tar.gz", files)
    with shipped(art, tmp_path / "cache") as sent:
        assert sent.format == "tar.gz"
        raw = sent.path.read_bytes()
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", "gzip without a timestamp"
        assert contents(sent.path) == files
        assert raw != art.path.read_bytes()


def test_venv_bundle_is_sent_as_a_canonical_tar_too(tmp_path: Path) -> None:
    art = tar_gz(tmp_path / "b.tar.gz", {"venv/pyvenv.cfg": b"home = /usr/bin\n" * 500})
    bundle = Artifact(art.path, "app", "1", "1-abc", "venv", art.sha256, art.size)
    with shipped(bundle, tmp_path / "cache") as sent:
        assert sent.format == "tar.gz" and sent.path.parent == tmp_path / "cache"


def test_deb_is_sent_as_it_is_unread(tmp_path: Path) -> None:
    deb = tmp_path / "app.deb"
    deb.write_bytes(b"!<arch>\nnot checked here")
    art = artifact(deb, "deb")
    with shipped(art, tmp_path / "cache") as sent:
        assert (sent.path, sent.sha256, sent.format) == (deb, art.sha256, "deb")
    assert preview(art, tmp_path / "cache") == sent
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("blob", [b"", os.urandom(300_000)], ids=["compressible", "incompressible"])
def test_unsafe_member_is_refused_naming_the_artifact(tmp_path: Path, blob: bytes) -> None:
    escape = tarfile.TarInfo("../../etc/cron.d/x")
    art = tar_gz(tmp_path / "a.tar.gz", {"blob.bin": blob}, bad=escape)
    refused = rf"^{tmp_path}/a\.tar\.gz: member '\.\./\.\./etc/cron\.d/x'"
    with pytest.raises(ArtifactError, match=refused), shipped(art, tmp_path / "cache"):
        pass
    with pytest.raises(ArtifactError, match=refused):
        preview(art, tmp_path / "cache")


@pytest.mark.parametrize("data", [b"not gzip at all", None], ids=["garbage", "truncated"])
def test_unreadable_tar_gz_is_refused(tmp_path: Path, data: bytes | None) -> None:
    path = tmp_path / "a.tar.gz"
    if data is None:  # a real tar.gz of random bytes, cut short
        tar_gz(path, {"blob.bin": os.urandom(300_000)})
        data = path.read_bytes()[:150_000]
    path.write_bytes(data)
    unreadable = r"a\.tar\.gz: not a readable tar archive"
    with (
        pytest.raises(ArtifactError, match=unreadable),
        shipped(artifact(path, "tar.gz"), tmp_path),
    ):
        pass


# -- the cache -----------------------------------------------------------------


def test_a_later_run_reuses_the_payload_without_parsing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    art = tar_gz(tmp_path / "a.tar.gz", {"app.py": b"x = 1\n" * 1000})
    cache = tmp_path / "cache"
    with shipped(art, cache) as first:
        pass

    def parse(*_: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(canonical, "parse", parse)
    assert preview(art, cache) == first
    with shipped(art, cache) as again:
        assert again == first
    assert sorted(cache.iterdir()) == [first.path]


def test_a_damaged_cached_payload_is_made_again(tmp_path: Path) -> None:
    art = tar_gz(tmp_path / "a.tar.gz", {"app.py": b"x = 1\n" * 1000})
    cache = tmp_path / "cache"
    with shipped(art, cache) as first:
        good = first.path.read_bytes()
    first.path.write_bytes(good[:-10] + b"0123456789")
    with shipped(art, cache) as again:
        assert again.path.read_bytes() == good and again.sha256 == first.sha256


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fleetdist.shipping import canonical, payload
    from fleetdist.shipping.artifact import Artifact, file_sha256

    def stuck(members, spool, out):
        out.write(b"half a payload" * 1000)
        print("writing", flush=True)
        time.sleep(120)

    canonical.write = stuck
    path = Path(sys.argv[1])
    art = Artifact(path, "app", "1", "1-abc", "tar.gz", file_sha256(path), path.stat().st_size)
    with payload.shipped(art, Path(sys.argv[2])):
        pass
    """
)


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    big = tar_gz(tmp_path / "big.tar.gz", {"blob.bin": os.urandom(300_000)})
    argv = [sys.executable, "-c", KILLED_RUN, str(big.path), str(cache)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
            left = sorted(p.name for p in cache.iterdir())
            assert len(left) == 2 and all(n.startswith(payload.TEMP) for n in left), left
            # While that run lives, its temp files are locked and nobody removes them...
            with shipped(tar_gz(tmp_path / "other.tar.gz", {"a": b"a" * 9000}), cache):
                assert sum(p.name.startswith(payload.TEMP) for p in cache.iterdir()) == 2
        finally:
            proc.kill()
    # ...once it is dead (SIGKILL: no clean-up of its own), the next run does.
    with shipped(tar_gz(tmp_path / "third.tar.gz", {"b": b"b" * 9000}), cache) as sent:
        assert not [p for p in cache.iterdir() if p.name.startswith(payload.TEMP)]
        assert sent.path.exists()


def test_payloads_unused_for_a_day_are_removed_unless_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = tar_gz(tmp_path / "old.tar.gz", {"a": b"a" * 9000})
    busy = tar_gz(tmp_path / "busy.tar.gz", {"b": b"b" * 9000})
    new = tar_gz(tmp_path / "new.tar.gz", {"c": b"c" * 9000})
    day_ago = time.time() - payload.KEEP_SECONDS - 60
    with shipped(old, cache) as stale:
        pass
    os.utime(stale.path, (day_ago, day_ago))
    with shipped(busy, cache) as in_use:
        os.utime(in_use.path, (day_ago, day_ago))  # as old, but a live run streams it
        with shipped(new, cache) as fresh:
            assert sorted(cache.iterdir()) == sorted([in_use.path, fresh.path])


def test_a_cached_payload_in_use_is_touched(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    art = tar_gz(tmp_path / "a.tar.gz", {"a": b"a" * 9000})
    with shipped(art, cache) as first:
        pass
    os.utime(first.path, (0, 0))
    with shipped(art, cache):
        assert first.path.stat().st_mtime > time.time() - 60, "its age counts from its last use"


def test_a_locked_temp_file_is_never_removed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    temp = cache / f"{payload.TEMP}live"
    temp.write_bytes(b"being written")
    with temp.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with shipped(tar_gz(tmp_path / "a.tar.gz", {"a": b"a"}), cache):
            assert temp.exists()
    with shipped(tar_gz(tmp_path / "a.tar.gz", {"a": b"a"}), cache):
        assert not temp.exists()


class Full(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("bad", [False, True], ids=["good-archive", "bad-archive"])
def test_a_full_disk_fails_clearly_and_a_bad_archive_still_by_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: bool
) -> None:
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **_: Full())
    escape = tarfile.TarInfo("../x") if bad else None
    art = tar_gz(tmp_path / "a.tar.gz", {"blob.bin": os.urandom(300_000)}, bad=escape)
    cache = tmp_path / "cache"
    expected = (
        "member '../x' would unpack outside" if bad else f"cannot write its payload in {cache}"
    )
    with pytest.raises(ArtifactError, match=expected) as info, shipped(art, cache):
        pass
    assert str(info.value).startswith(f"{art.path}: ")
    assert "No space left on device" in str(info.value) or bad
    assert list(cache.iterdir()) == [], "no temporary file left behind"


def test_a_cache_that_cannot_be_made_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    art = tar_gz(tmp_path / "a.tar.gz", {"app.py": b"x = 1\n"})
    cannot = r"a\.tar\.gz: cannot write its payload in .*state/payloads \(Not a directory\)"
    with pytest.raises(ArtifactError, match=cannot), shipped(art, tmp_path / "state" / "payloads"):
        pass


def test_preview_writes_nothing_and_matches_the_deploy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for n, files in enumerate(({"a.py": b"x = 1\n" * 1000}, {"b.bin": os.urandom(300_000)})):
        art = tar_gz(tmp_path / "a.tar.gz", files)
        cache = tmp_path / f"cache{n}"
        planned = preview(art, cache)
        assert not cache.exists() and list(scratch.iterdir()) == []
        with shipped(art, cache) as sent:
            assert planned == sent


# -- end to end, local fleet -------------------------------------------------------


def test_incompressible_app_deploys_from_its_canonical_plain_tar(project: Project) -> None:
    """Unpacked with `tar -xf` on every host; the marker still names the artifact's sha256."""
    blob = os.urandom(1_000_000)  # dwarfs the app itself, so its tar stays incompressible
    (project.app_dir / "hello" / "blob.bin").write_bytes(blob)
    assert project.run("build").code == 0  # a dry run builds nothing: it plans what is built
    plan = project.run("deploy", "--dry-run")
    assert plan.code == 0, plan.err
    assert (
        ".tar.gz, re-serialised by fleetdist as a canonical plain tar (sent only after" in plan.out
    )
    assert "\nunpack_tar\n" in plan.out and "unpack_tar z" not in plan.out
    assert not (project.root / ".fleetdist" / "payloads").exists(), "a dry run writes no payload"
    rid = project.deploy()
    [art] = (project.root / "dist").glob(f"*{rid}*.tar.gz")
    [cached] = (project.root / ".fleetdist" / "payloads").iterdir()
    assert cached.name.startswith(file_sha256(art)) and cached.name.endswith(".tar")
    for host in HOSTS:
        release = project.host_root(host) / "releases" / rid
        assert (release / "hello" / "blob.bin").read_bytes() == blob
        assert (release / ".fleetdist-release").read_text() == f"{rid} {file_sha256(art)}\n"
        assert list((project.host_root(host) / ".fleetdist" / "incoming").iterdir()) == []


def test_compressible_payload_is_gzipped_by_fleetdist(project: Project) -> None:
    rid = project.deploy()
    [cached] = (project.root / ".fleetdist" / "payloads").iterdir()
    assert cached.name.endswith(".tar.gz")
    assert gzip.decompress(cached.read_bytes())[:512].rstrip(b"\0")
    assert hashlib.sha256(cached.read_bytes()).hexdigest() in cached.name
    assert project.current(HOSTS[0]) == rid
