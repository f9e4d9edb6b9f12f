"""Hosts unpack exactly what the controller validated: hostile headers, and GNU tar as the judge.

Every archive here is written byte by byte (`rawtar`), including headers on
which Python's tarfile and GNU tar disagree.  Each hostile one must be
refused with a one-line error naming the artifact and the member; for each
accepted one, GNU tar run on the payload must create exactly the validated
members, with normalised modes, and nothing outside its directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from fleetdist.errors import ArtifactError
from fleetdist.shipping import canonical
from fleetdist.shipping.artifact import Artifact
from fleetdist.shipping.payload import Payload, shipped
from fleetdist.shipping.safety import DIR, FILE, HARDLINK, SYMLINK, Member

from .rawtar import (
    GNU,
    POSIX,
    V7,
    base256,
    directory,
    file,
    gz,
    hardlink,
    header,
    pad,
    pax,
    polyglot,
    symlink,
    tar,
)

APP = file(b"app/main.py", b"print('hi')\n")


def artifact_of(tmp_path: Path, data: bytes, fmt: str = "tar.gz") -> Artifact:
    path = tmp_path / "dist" / "evil.tar.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return Artifact(path, "app", "1", "1-evil", fmt, sha, len(data))


def gzipped(raw: bytes) -> bytes:
    """`raw` as a tar.gz file: gzipped, unless it already is one (the polyglot)."""
    return raw if raw[:2] == b"\x1f\x8b" else gz(raw)


def validated(art: Artifact) -> list[Member]:
    with canonical.Spool(None) as spool:
        return canonical.parse(art.path, art.sha256, spool)


# -- refused -----------------------------------------------------------------

HOSTILE: dict[str, tuple[bytes, str]] = {
    # The two parsers read different names: Python prepends the prefix, GNU tar does not.
    "gnu-magic-prefix-symlink": (
        tar(APP, symlink(b"link", b"../main.py", magic=GNU, prefix=b"app/sub")),
        "member 'app/sub/link' has a ustar prefix in a GNU or V7 header",
    ),
    "v7-prefix-symlink": (
        tar(APP, symlink(b"link", b"../main.py", magic=V7, prefix=b"app/sub")),
        "member 'app/sub/link' has a ustar prefix in a GNU or V7 header",
    ),
    "v7-prefix-marker": (
        tar(APP, symlink(b".fleetdist-release", b"../main.py", magic=V7, prefix=b"app")),
        "has a ustar prefix in a GNU or V7 header",
    ),
    "pax-sparse-name-then-path": (
        tar(
            APP, pax((b"GNU.sparse.name", b"evil"), (b"path", b"app/ok")), symlink(b"x", b"main.py")
        ),
        "member 'app/ok' has pax record 'GNU.sparse.name'",
    ),
    "pax-sparse-map": (
        tar(APP, pax((b"GNU.sparse.map", b"0,1"), (b"GNU.sparse.size", b"1")), file(b"app/s")),
        "has pax record 'GNU.sparse.map'",
    ),
    # fleetdist's own names.
    "marker-symlink": (
        tar(APP, symlink(b".fleetdist-release", b"app/main.py")),
        "member '.fleetdist-release' uses a name reserved for fleetdist",
    ),
    "marker-file": (tar(APP, file(b"./.fleetdist-release")), "reserved for fleetdist"),
    "state-dir": (tar(APP, file(b".fleetdist/ledger.jsonl")), "reserved for fleetdist"),
    "abi-as-symlink": (
        tar(APP, symlink(b".fleetdist-abi", b"app/main.py")),
        "member '.fleetdist-abi' uses a name reserved for fleetdist",
    ),
    # Symlinks judged through the links the archive itself makes.
    "dot-then-parent": (
        tar(APP, symlink(b"a", b"."), symlink(b"b", b"a/..")),
        "symlink 'b' -> 'a/..' escapes the release",
    ),
    "chain": (
        tar(APP, symlink(b"app/x", b"y"), symlink(b"app/y", b"../..")),
        "symlink 'app/x' -> 'y' escapes the release",
    ),
    "chain-through-dir-link": (
        tar(APP, directory(b"d/e/"), symlink(b"up", b"d/e"), symlink(b"d/l", b"../up/../../..")),
        "symlink 'd/l' -> '../up/../../..' escapes",
    ),
    "loop": (tar(APP, symlink(b"a", b"b"), symlink(b"b", b"a")), "symlink 'a' -> 'b' is a loop"),
    "absolute-symlink": (tar(APP, symlink(b"etc", b"/etc")), "symlink 'etc' -> '/etc' escapes"),
    "member-below-symlink": (
        tar(APP, symlink(b"lib", b"app"), file(b"lib/evil.py")),
        "member 'lib/evil.py' lies below the symlink 'lib'",
    ),
    "member-below-file": (
        tar(APP, file(b"app/main.py/x")),
        "member 'app/main.py/x' lies below the file 'app/main.py'",
    ),
    # Hard links: only to an earlier regular file of this archive.
    "hardlink-escapes": (
        tar(APP, hardlink(b"h", b"../../etc/passwd")),
        "hard link 'h' -> '../../etc/passwd' escapes the release",
    ),
    "hardlink-to-missing": (
        tar(APP, hardlink(b"h", b"app/nothing")),
        "hard link 'h' -> 'app/nothing' does not name an earlier file",
    ),
    "hardlink-to-later": (
        tar(hardlink(b"h", b"app/main.py"), APP),
        "hard link 'h' -> 'app/main.py' does not name an earlier file",
    ),
    "hardlink-to-symlink": (
        tar(APP, symlink(b"s", b"app/main.py"), hardlink(b"h", b"s")),
        "does not name an earlier file",
    ),
    # One member per name.
    "dir-then-symlink": (
        tar(directory(b"app/"), APP, symlink(b"app", b"elsewhere")),
        "member 'app' appears twice (dir, symlink)",
    ),
    "file-twice": (tar(APP, APP), "member 'app/main.py' appears twice (file, file)"),
    # Names.
    "dotdot": (tar(APP, file(b"app/../../x")), "member 'app/../../x' would unpack outside"),
    "absolute": (tar(APP, file(b"/etc/cron.d/x")), "member '/etc/cron.d/x' would unpack outside"),
    "newline": (tar(APP, file(b"app/a\nb")), "contains a control character"),
    "nul-in-pax-path": (
        tar(APP, pax((b"path", b"app/ok\x00/../../x")), file(b"x")),
        "contains a control character",
    ),
    "not-utf8": (tar(APP, file(b"app/\xff\xfe")), "is not valid UTF-8"),
    "long-component": (
        tar(APP, pax((b"path", b"app/" + b"c" * 256)), file(b"x")),
        "has a component longer than 255 bytes",
    ),
    "long-path": (
        tar(APP, pax((b"path", b"/".join([b"d" * 200] * 21))), file(b"x")),
        "is longer than 4096 bytes",
    ),
    # Types.
    "char-device": (tar(APP, header(b"app/null", kind=b"3")), "member 'app/null' is a device"),
    "block-device": (tar(APP, header(b"app/sda", kind=b"4")), "is a device"),
    "fifo": (tar(APP, header(b"app/pipe", kind=b"6")), "is a device, fifo"),
    "contiguous": (tar(APP, file(b"app/c", kind=b"7")), "sparse, contiguous or other"),
    "old-gnu-sparse": (tar(APP, header(b"app/s", kind=b"S", magic=GNU)), "sparse"),
    "volume-label": (tar(APP, header(b"label", kind=b"V", magic=GNU)), "other special file"),
    # Sizes and headers.
    "huge-size": (
        tar(APP, header(b"app/big", size_field=base256(1 << 40))),
        "member 'app/big' claims 1099511627776 bytes",
    ),
    "negative-size": (tar(APP, header(b"app/neg", size_field=base256(-512))), "claims -512 bytes"),
    "huge-pax-header": (
        tar(APP, header(b"././@PaxHeader", kind=b"x", size=2 << 20)),
        "oversized or endless extended headers",
    ),
    "endless-long-names": (
        tar(APP, *[header(b"././@LongLink", kind=b"L", size=2) + pad(b"a\0")] * 20, file(b"x")),
        "oversized or endless extended headers",
    ),
    "bad-checksum-mid-archive": (
        tar(APP, header(b"app/hidden", checksum=1), symlink(b"evil", b"/etc")),
        "unreadable header after member 'app/main.py'",
    ),
}

# Whole files, not gzipped by the test.
AS_IS: dict[str, tuple[bytes, str]] = {
    "plain-tar-as-tar-gz": (tar(APP), "not a readable tar archive"),
    "garbage": (b"\x1f\x8bnot really", "not a readable tar archive"),
    "truncated": (gz(tar(APP, file(b"app/big", os.urandom(9000))))[:3000], "not a readable"),
    # A gzip whose inflated tar is hostile, behind a harmless plain tar in the gzip header.
    "polyglot-gzip-view-hostile": (
        polyglot(tar(file(b"harmless")), tar(APP, symlink(b"evil", b"/etc"))),
        "symlink 'evil' -> '/etc' escapes",
    ),
}
CASES = {**{k: (gz(raw), message) for k, (raw, message) in HOSTILE.items()}, **AS_IS}


@pytest.mark.parametrize(("data", "message"), CASES.values(), ids=list(CASES))
def test_hostile_archive_is_refused_naming_artifact_and_member(
    tmp_path: Path, data: bytes, message: str
) -> None:
    art = artifact_of(tmp_path, data)
    with pytest.raises(ArtifactError) as info, shipped(art, tmp_path / "cache"):
        pass
    line = str(info.value)
    assert line.startswith(f"{art.path}: "), line
    assert message in line
    assert "\n" not in line
    assert not list((tmp_path / "cache").glob("*")), "nothing cached for a refused archive"


def test_bounds_are_checked_from_headers_before_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second member's data is cut off: reading it would fail; the total refuses it first."""
    monkeypatch.setattr(canonical, "MAX_TOTAL_BYTES", 1 << 20)
    blob = os.urandom(700_000)
    raw = tar(file(b"a", blob), header(b"b", size=len(blob)))[:-1024]
    art = artifact_of(tmp_path, gz(raw))
    with pytest.raises(ArtifactError, match=r"member 'b': more than 1048576 bytes in all"):
        validated(art)


def test_member_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canonical, "MAX_MEMBERS", 50)
    art = artifact_of(tmp_path, gz(tar(*[file(b"f%d" % i) for i in range(51)])))
    with pytest.raises(ArtifactError, match="more than 50 members"):
        validated(art)


def test_a_file_changed_since_it_was_hashed_is_refused(tmp_path: Path) -> None:
    art = artifact_of(tmp_path, gz(tar(APP)))
    art.path.write_bytes(gz(tar(APP, file(b"app/new.py"))))
    with pytest.raises(ArtifactError, match="changed while it was being read"):
        validated(art)


# -- accepted, and GNU tar agrees ------------------------------------------------

ACCEPTED: dict[str, bytes] = {
    "plain": tar(
        directory(b"app/"),
        APP,
        directory(b"app/sub/"),
        symlink(b"app/sub/up", b"../main.py"),
        hardlink(b"app/again.py", b"app/main.py"),
        file(b"run.sh", b"#!/bin/sh\n", mode=0o755),
        file(b".fleetdist-abi", b"cpython-311-x86_64-linux-gnu\n"),
    ),
    "hostile-modes": tar(
        directory(b"app/", mode=0o7777),
        file(b"app/setuid", b"x", mode=0o4755),
        file(b"app/setgid-world", b"x", mode=0o2777),
        file(b"app/world-writable", b"x", mode=0o666),
        file(b"app/group-exec-only", b"x", mode=0o610),
        directory(b"tmp/", mode=0o1777),
    ),
    "dotted-names": tar(directory(b"./"), file(b"./a"), file(b"b//c"), directory(b"./d/./")),
    "repeated-dir": tar(directory(b"d/"), file(b"d/x"), directory(b"d/", mode=0o700)),
    "implied-parents": tar(file(b"deep/er/still/x.txt")),
    "links-inside": tar(
        APP,
        symlink(b"here", b"."),
        symlink(b"x", b"y"),
        symlink(b"y", b"app/../app/main.py"),
        symlink(b"app/dangling", b"not-there"),
    ),
    "long-names": tar(
        pax((b"path", b"p/" + b"n" * 150)),
        file(b"ignored"),
        header(b"././@LongLink", kind=b"L", size=121, magic=GNU) + pad(b"g/" + b"m" * 118 + b"\0"),
        file(b"ignored", magic=GNU),
        file(b"name", prefix=b"posix/prefix/is/agreed/on", magic=POSIX),
    ),
    "utf8": tar(file("é/ü.txt".encode())),
    "base256-size": tar(header(b"b256", size_field=base256(3)) + pad(b"abc")),
    "pax-mtime-and-owner": tar(
        pax((b"mtime", b"1700000000.75"), (b"uname", b"mallory"), (b"uid", b"4242")),
        file(b"owned"),
    ),
    "gnu-format-without-prefix": tar(file(b"gnu", magic=GNU), symlink(b"l", b"gnu", magic=GNU)),
    "polyglot": polyglot(tar(symlink(b"evil", b"/etc")), tar(file(b"good", b"gzip view"))),
}


def _gnu_tree(payload: Payload, box: Path) -> dict[str, tuple[str, int, str]]:
    """Unpack `payload` with GNU tar as a host would; what it made, by relative path."""
    dest = box / "release"
    dest.mkdir(parents=True)
    flags = "-xpf" if payload.format == "tar" else "-xzpf"
    subprocess.run(
        ["tar", flags, str(payload.path), "-C", str(dest), "--no-same-owner"], check=True
    )
    assert [p.name for p in box.iterdir()] == ["release"], "GNU tar wrote outside the release"
    made: dict[str, tuple[str, int, str]] = {}
    for path in sorted(dest.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(dest).as_posix()
        if stat.S_ISLNK(st.st_mode):
            made[rel] = (SYMLINK, 0o777, os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            made[rel] = (DIR, stat.S_IMODE(st.st_mode), "")
        else:
            made[rel] = (FILE, stat.S_IMODE(st.st_mode), path.read_bytes().hex())
    return made


def _gnu_list(payload: Payload) -> list[str]:
    flags = "-tf" if payload.format == "tar" else "-tzf"
    out = subprocess.run(
        ["tar", flags, str(payload.path), "--quoting-style=literal"],
        capture_output=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    return [line.decode("utf-8").rstrip("/") for line in out.splitlines()]


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=list(ACCEPTED))
def test_gnu_tar_unpacks_exactly_the_validated_members(tmp_path: Path, raw: bytes) -> None:
    art = artifact_of(tmp_path, gzipped(raw))
    members = validated(art)
    with shipped(art, tmp_path / "cache") as payload:
        assert payload.format in ("tar", "tar.gz")
        assert payload.path.parent == tmp_path / "cache"
        assert hashlib.sha256(payload.path.read_bytes()).hexdigest() == payload.sha256
        assert _gnu_list(payload) == [m.name for m in members], "same members, same order"
        made = _gnu_tree(payload, tmp_path / "box")
    assert sorted(made) == sorted(m.name for m in members)
    for member in members:
        kind, mode, _ = made[member.name]
        assert kind == (FILE if member.kind == HARDLINK else member.kind), member
        assert mode in (0o644, 0o755, 0o777), member
        assert mode == member.mode, member
        if member.kind == SYMLINK:
            assert made[member.name][2] == member.link
        if member.kind == HARDLINK:
            assert made[member.name] == made[member.link]
            dest = tmp_path / "box" / "release"
            assert (dest / member.name).samefile(dest / member.link)


def test_modes_are_normalised(tmp_path: Path) -> None:
    members = {m.name: m for m in validated(artifact_of(tmp_path, gz(ACCEPTED["hostile-modes"])))}
    assert {name: oct(m.mode) for name, m in members.items()} == {
        "app": "0o755",
        "app/setuid": "0o755",
        "app/setgid-world": "0o755",
        "app/world-writable": "0o644",
        "app/group-exec-only": "0o755",
        "tmp": "0o755",
    }


def test_names_are_normalised_and_parents_made_explicit(tmp_path: Path) -> None:
    def names(raw: bytes) -> list[str]:
        return [m.name for m in validated(artifact_of(tmp_path, gzipped(raw)))]

    assert names(ACCEPTED["dotted-names"]) == ["b", "d", "a", "b/c"]
    assert names(ACCEPTED["repeated-dir"]) == ["d", "d/x"]
    assert names(ACCEPTED["implied-parents"]) == [
        "deep",
        "deep/er",
        "deep/er/still",
        "deep/er/still/x.txt",
    ]
    posix = ["posix", "posix/prefix", "posix/prefix/is", "posix/prefix/is/agreed"]
    assert names(ACCEPTED["long-names"]) == [
        "g",
        "p",
        *posix,
        "posix/prefix/is/agreed/on",
        "g/" + "m" * 118,
        "p/" + "n" * 150,
        "posix/prefix/is/agreed/on/name",
    ]
    assert names(ACCEPTED["polyglot"]) == ["good"], "a tar.gz is read as gzip, whatever else"


def test_owner_and_times_are_canonical(tmp_path: Path) -> None:
    art = artifact_of(tmp_path, gz(ACCEPTED["pax-mtime-and-owner"]))
    with shipped(art, tmp_path / "cache") as payload:
        flags = "-tvf" if payload.format == "tar" else "-tvzf"
        listing = subprocess.run(
            ["tar", flags, str(payload.path), "--numeric-owner", "--full-time"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TZ": "UTC"},
        ).stdout
    assert listing.split()[:6] == ["-rw-r--r--", "0/0", "1", "2023-11-14", "22:13:20", "owned"]


def test_same_artifact_gives_the_same_payload_bytes(tmp_path: Path) -> None:
    art = artifact_of(tmp_path, gz(ACCEPTED["plain"]))
    with shipped(art, tmp_path / "one") as first, shipped(art, tmp_path / "two") as second:
        assert first.path.read_bytes() == second.path.read_bytes()
        assert first.path.name == second.path.name
