"""What a host is sent for an artifact: fleetdist's canonical tar of it, from a cache.

An archive artifact (a plain, gzip, bzip2 or xz tar; a venv bundle) never
reaches a host as it is: the controller parses it once, checks every
member, and re-serialises what passed (`shipping.canonical`).  A pex is
sent the same way, as the canonical tar of a release holding one
executable, `<app>.pex`.  That canonical tar is what travels and what
a host's sha256 check covers, so a host unpacks exactly what was checked;
the host's release marker still records the artifact's own sha256.

The canonical tar goes gzipped (by us, with no timestamp) only when gzip
shrinks it by more than RAW_MAX_GROWTH: every host inflates what it is
sent, ~22 ms of CPU for 5 MB on the bench's hosts, four times the untar
itself, while an extra MB on the wire costs each host ~19 ms.

Payloads live in `<state>/payloads/`, named by the artifact's sha256 and
the canonicaliser's version (so a later run of the same artifact reuses
one without parsing again) and by their own sha256 (checked on reuse).
They are written under a temporary name and renamed into place, so a
killed run leaves at most a `.tmp-*` file, which the next run removes once
no live run holds its lock; payloads unused for a day go the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fleetdist.errors import ArtifactError
from fleetdist.shipping import canonical
from fleetdist.shipping.artifact import CHUNK, SINGLE_FILE, TAR_FORMATS, Artifact, file_sha256
from fleetdist.shipping.safety import Member

# Ship the plain tar only if it is at most this much bigger than its gzip:
# on the bench's fleet an extra MB on the wire costs each host ~19 ms, and
# inflating a compressed MB ~4 ms, so even 5% more bytes is a clear win,
# and a slow network still sees at most 5% more traffic.
RAW_MAX_GROWTH = 1.05
KEEP_SECONDS = 24 * 3600  # a payload unused this long is removed by a later run
TEMP = ".tmp-"


@dataclass(frozen=True)
class Payload:
    """The file streamed to every host, its sha256, and how a host unpacks it.

    `format` is what `release.packages.place` switches on: "tar" or
    "tar.gz" for the canonical tar of an archive, "deb" as it is.  `note`
    says how it came from the artifact ("" when it is the artifact).
    """

    path: Path
    sha256: str
    format: str
    note: str = ""


def _note(fmt: str) -> str:
    return f"re-serialised by fleetdist as a canonical {'plain tar' if fmt == 'tar' else fmt}"


@contextmanager
def shipped(artifact: Artifact, cache: Path) -> Iterator[Payload]:
    """The payload for `artifact`, made in (or reused from) `cache`; kept there while in use.

    Raises ArtifactError (before any host is touched) naming the artifact
    for an archive the rules refuse or that is unreadable, and one naming
    `cache` when its payload cannot be written there (a full disk).
    """
    if artifact.format not in (*TAR_FORMATS, *SINGLE_FILE):
        yield Payload(artifact.path, artifact.sha256, artifact.format)
        return
    found = _reuse(cache, artifact)
    payload, fd = found or _make(cache, artifact)
    try:
        _clean(cache)
        yield payload
    finally:
        os.close(fd)  # releases the shared lock that kept `_clean` off it


def preview(artifact: Artifact, cache: Path) -> Payload:
    """The payload `shipped` would give, for `--dry-run`: checked the same way, nothing written.

    A cached payload is named, not read; otherwise the canonical tar is
    only hashed, with file data spooled to a nameless temporary file.
    """
    if artifact.format not in (*TAR_FORMATS, *SINGLE_FILE):
        return Payload(artifact.path, artifact.sha256, artifact.format)
    for path in _cached(cache, artifact):
        return _described(path)
    with canonical.Spool(None) as spool:
        members = _members(artifact, spool)
        _no_room(artifact, spool.error, Path(tempfile.gettempdir()))
        plain, packed = canonical.Sink(), canonical.Sink()
        _write(members, spool, plain, packed)
    fmt, sha = _pick(plain, packed)
    return Payload(cache / _name(artifact, sha, fmt), sha, fmt, _note(fmt))


def _members(artifact: Artifact, spool: canonical.Spool) -> list[Member]:
    """The checked members of an archive, or the one file of a PEX, data into `spool`."""
    if artifact.format in SINGLE_FILE:
        name = f"{artifact.app}.{artifact.format}"
        return canonical.single(artifact.path, artifact.sha256, spool, name)
    return canonical.parse(artifact.path, artifact.sha256, spool, artifact.format)


def _name(artifact: Artifact, sha: str, fmt: str) -> str:
    return f"{artifact.sha256}.v{canonical.VERSION}.{sha}.{fmt}"


def _cached(cache: Path, artifact: Artifact) -> list[Path]:
    return sorted(cache.glob(_name(artifact, "*", "tar*")))


def _described(path: Path) -> Payload:
    """The payload a cache file holds, from its name: `<artifact sha>.v<N>.<sha>.<format>`."""
    _, _, sha, fmt = path.name.split(".", 3)
    return Payload(path, sha, fmt, _note(fmt))


def _pick(plain: canonical.Sink, packed: canonical.Sink) -> tuple[str, str]:
    """("tar" or "tar.gz", its sha256): the plain tar unless gzip clearly shrinks it."""
    if plain.size <= packed.size * RAW_MAX_GROWTH:
        return "tar", plain.digest.hexdigest()
    return "tar.gz", packed.digest.hexdigest()


def _write(
    members: list[Member], spool: canonical.Spool, plain: canonical.Sink, packed: canonical.Sink
) -> None:
    """The canonical tar into `plain`, and its gzip (no name, no timestamp) into `packed`."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0, compresslevel=6) as gz:
        canonical.write(members, spool, canonical.Sink(plain, gz))


def _no_room(artifact: Artifact, error: OSError | None, where: Path) -> None:
    if error is not None:
        reason = error.strerror or str(error)
        raise ArtifactError(f"{artifact.path}: cannot write its payload in {where} ({reason})")


# -- the cache ---------------------------------------------------------------


def _reuse(cache: Path, artifact: Artifact) -> tuple[Payload, int] | None:
    """A cached payload of `artifact` whose bytes still match its name, share-locked."""
    for path in _cached(cache, artifact):
        found = _described(path)
        fd = _lock(path, fcntl.LOCK_SH)
        if fd is None:
            continue
        if file_sha256(path) == found.sha256:
            with contextlib.suppress(OSError):
                os.utime(path)  # in use: `_clean` counts a payload's age from its last use
            return found, fd
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()  # damaged: made again below
    return None


def _make(cache: Path, artifact: Artifact) -> tuple[Payload, int]:
    """Canonicalise `artifact` into `cache`: checked first, then renamed into place, locked."""
    with contextlib.suppress(OSError):  # if it fails, Spool says why it cannot write there
        cache.mkdir(parents=True, exist_ok=True)
    with canonical.Spool(cache) as spool:
        members = _members(artifact, spool)
        _no_room(artifact, spool.error, cache)
        try:
            return _store(cache, artifact, members, spool)
        except OSError as exc:
            _no_room(artifact, exc, cache)
            raise


def _store(
    cache: Path, artifact: Artifact, members: list[Member], spool: canonical.Spool
) -> tuple[Payload, int]:
    with _temp(cache) as (plain_fh, plain_path), _temp(cache) as (packed_fh, packed_path):
        plain, packed = canonical.Sink(plain_fh), canonical.Sink(packed_fh)
        _write(members, spool, plain, packed)
        fmt, sha = _pick(plain, packed)
        chosen = plain_fh if fmt == "tar" else packed_fh
        chosen.flush()
        os.fsync(chosen.fileno())  # a payload found later must be whole
        final = cache / _name(artifact, sha, fmt)
        (plain_path if fmt == "tar" else packed_path).replace(final)
    fd = _lock(final, fcntl.LOCK_SH)
    if fd is None:
        raise ArtifactError(f"{artifact.path}: its payload {final} vanished as it was written")
    return Payload(final, sha, fmt, _note(fmt)), fd


@contextmanager
def _temp(cache: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A `.tmp-*` file in `cache`, locked for its life: `_clean` removes it only once we died."""
    fd, path = _locked_temp(cache)
    try:
        with os.fdopen(fd, "wb", buffering=CHUNK) as fh:
            yield fh, path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _locked_temp(cache: Path) -> tuple[int, Path]:
    """mkstemp, then flock; again if a cleaner removed the file in between (it was unlocked)."""
    for _ in range(3):
        fd, name = tempfile.mkstemp(dir=cache, prefix=TEMP)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(name).st_ino:
                return fd, Path(name)
        os.close(fd)
    raise OSError(f"{cache}: temporary files vanish as they are made")


def _lock(path: Path, how: int) -> int | None:
    """An fd of `path` holding flock `how` (non-blocking), or None if taken or gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == path.stat().st_ino:  # not unlinked by a cleaner meanwhile
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _clean(cache: Path) -> None:
    """Remove what no live run holds: temp files of killed runs, payloads unused for a day.

    Best effort: a file that cannot be removed now is tried again next run.
    """
    now = time.time()
    with contextlib.suppress(OSError):
        for path in cache.iterdir():
            temp = path.name.startswith(TEMP)
            with contextlib.suppress(OSError):
                if not temp and now - path.stat().st_mtime < KEEP_SECONDS:
                    continue
                fd = _lock(path, fcntl.LOCK_EX)
                if fd is not None:
                    path.unlink()
                    os.close(fd)
