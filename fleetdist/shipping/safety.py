"""What an archive artifact may contain: the rules every member must pass.

The controller parses an archive once (`shipping.canonical`), runs each member
through these rules and re-serialises exactly the members that passed, so
these rules are all a release directory can ever receive:

- names are relative, valid UTF-8 without control characters, at most
  4096 bytes (255 per component), with no `..` component; `./a//b` is
  normalised to `a/b`, and a `.` directory entry is dropped;
- members are regular files, directories, symlinks, and hard links to an
  earlier regular file; nothing else;
- a symlink's target is relative, and resolving it through the links the
  archive itself creates (a virtual tree rooted at the release) stays
  inside the release; loops are refused; no member lies below a symlink or
  a file;
- one member per name (a repeated directory entry is fine);
- the first component of a name never starts with `.fleetdist` (fleetdist's
  own markers), except the venv builder's `.fleetdist-abi`, a regular file;
- modes become 0644 or 0755 (files: 0755 if any x bit), directories 0755:
  no set-id, sticky, group or world write bits survive.
"""

from __future__ import annotations

import posixpath
import tarfile
import unicodedata
from dataclasses import dataclass, replace

from fleetdist.shipping.artifact import ABI_FILE

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS: a longer chain fails there too
RESERVED = ".fleetdist"

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hard link"
KINDS = {
    tarfile.REGTYPE: FILE,
    tarfile.AREGTYPE: FILE,
    tarfile.DIRTYPE: DIR,
    tarfile.SYMTYPE: SYMLINK,
    tarfile.LNKTYPE: HARDLINK,
}
ORDER = {DIR: 0, FILE: 1, SYMLINK: 2, HARDLINK: 3}  # links last: nothing is written through one


class UnsafeMember(Exception):
    """A member the rules refuse; the message starts with the member, the caller adds the file."""


@dataclass(frozen=True)
class Member:
    """One validated member: normalised name, kind and mode; `offset` locates its data."""

    name: str
    kind: str
    mode: int
    mtime: int
    size: int = 0
    link: str = ""  # a symlink's target as written, or a hard link's normalised target
    offset: int = 0


def _text(value: str, what: str) -> None:
    """Refuse undecodable bytes, control characters and overlong paths or components."""
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeMember(f"{what} {value!r} is not valid UTF-8") from None
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise UnsafeMember(f"{what} {value!r} contains a control character")
    if len(data) > MAX_PATH_BYTES:
        raise UnsafeMember(f"{what} {value[:60]!r}... is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in data.split(b"/")):
        raise UnsafeMember(f"{what} {value!r} has a component longer than {MAX_NAME_BYTES} bytes")


def check_name(raw: str, what: str = "member") -> str:
    """The normalised relative name of `raw` ("." for the release itself)."""
    _text(raw, what)
    if raw.startswith("/") or ".." in raw.split("/"):
        raise UnsafeMember(f"{what} {raw!r} would unpack outside the release")
    name = posixpath.normpath(raw) if raw else "."
    first = name.split("/")[0]
    if first.startswith(RESERVED) and name != ABI_FILE:
        raise UnsafeMember(f"{what} {raw!r} uses a name reserved for fleetdist")
    return name


def normal_mode(kind: str, mode: int) -> int:
    """0755 for directories and files with any x bit, 0644 for other files, 0777 for links."""
    if kind == SYMLINK:
        return 0o777
    return 0o755 if kind == DIR or mode & 0o111 else 0o644


def member_of(info: tarfile.TarInfo) -> Member:
    """Check one parsed header on its own and describe it; `Tree` checks it among the others."""
    kind = KINDS.get(info.type)
    if kind is None:
        what = "a device, fifo, sparse, contiguous or other special file"
        raise UnsafeMember(f"member {info.name!r} is {what}")
    name = check_name(info.name)
    if name == ABI_FILE and kind != FILE:  # read by the host's bundle check
        raise UnsafeMember(f"member {info.name!r} uses a name reserved for fleetdist")
    if name == "." and kind != DIR:
        raise UnsafeMember(f"member {info.name!r} is a {kind} in place of the release itself")
    link = ""
    if kind == SYMLINK:
        _text(info.linkname, f"symlink {name!r} -> target")
        if not info.linkname or info.linkname.startswith("/"):
            raise UnsafeMember(f"symlink {name!r} -> {info.linkname!r} escapes the release")
        link = info.linkname
    elif kind == HARDLINK:
        if info.linkname.startswith("/") or ".." in info.linkname.split("/"):
            raise UnsafeMember(f"hard link {name!r} -> {info.linkname!r} escapes the release")
        link = check_name(info.linkname, f"hard link {name!r} ->")
    mtime = max(0, min(int(info.mtime), 8**11 - 1))
    size = info.size if kind == FILE else 0
    return Member(name, kind, normal_mode(kind, info.mode), mtime, size, link)


class Tree:
    """The members of one archive, checked against each other as they arrive and at the end."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def add(self, member: Member) -> None:
        """Record `member`; a repeated directory, or one for the release itself, adds nothing."""
        if member.name == ".":
            return
        seen = self.members.get(member.name)
        if seen is not None:
            if seen.kind == member.kind == DIR:
                return
            raise UnsafeMember(f"member {member.name!r} appears twice ({seen.kind}, {member.kind})")
        if member.kind == HARDLINK:
            target = self.members.get(member.link)
            if target is None or target.kind != FILE:
                raise UnsafeMember(
                    f"hard link {member.name!r} -> {member.link!r} does not name an earlier file"
                )
            member = replace(member, mode=target.mode)
        self.members[member.name] = member

    def finish(self) -> list[Member]:
        """Check parents and symlink targets; the canonical member list, implied dirs included."""
        implied: dict[str, Member] = {}
        for member in sorted(self.members.values(), key=lambda m: m.name):
            for parent in _parents(member.name):
                above = self.members.get(parent)
                if above is None:
                    implied.setdefault(parent, Member(parent, DIR, 0o755, member.mtime))
                elif above.kind != DIR:
                    where = f"below the {above.kind} {parent!r}"
                    raise UnsafeMember(f"member {member.name!r} lies {where}")
        for member in self.members.values():
            if member.kind == SYMLINK:
                self._resolve(member)
        every = [*self.members.values(), *implied.values()]
        return sorted(every, key=lambda m: (ORDER[m.kind], m.name))

    def _resolve(self, link: Member) -> None:
        """Follow `link` through the archive's own links; refuse it if it leaves the release."""
        where = link.name.split("/")[:-1]
        todo = link.link.split("/")
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == ".." and not where:
                raise UnsafeMember(f"symlink {link.name!r} -> {link.link!r} escapes the release")
            if part == "..":
                where.pop()
                continue
            step = self.members.get("/".join([*where, part]))
            if step is None or step.kind != SYMLINK:
                where.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafeMember(f"symlink {link.name!r} -> {link.link!r} is a loop")
            todo = step.link.split("/") + todo  # relative to the directory holding `step`


def _parents(name: str) -> list[str]:
    """The proper ancestors of a normalised name, outermost first: a/b/c -> [a, a/b]."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
