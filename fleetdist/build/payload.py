"""What a host is sent for an artifact: the artifact, or its tar without the gzip.

Every host of a rollout inflates what it is sent: ~22 ms of CPU for 5 MB on
the bench's hosts, four times what the untar itself costs.  For a tar.gz
that gzip could barely shrink (media, wheels, zips or random data inside)
that is pure loss, paid once per host, so the controller inflates it once
and ships the plain tar instead.  An artifact that does compress is shipped
as it is: each byte on the wire costs a host more than inflating it.

Either way the payload is checked member by member here (`safety.check_tar`)
and the host verifies its sha256, so the host unpacks exactly the bytes
checked.  The host's release marker still records the artifact's own sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fleetdist.build.artifact import CHUNK, TAR_FORMATS, Artifact
from fleetdist.build.safety import check_tar
from fleetdist.errors import ArtifactError

# Ship the plain tar only if it is at most this much bigger than the tar.gz:
# on the bench's fleet an extra MB on the wire costs each host ~19 ms, and
# inflating a compressed MB ~4 ms, so even 5% more bytes is a clear win,
# and a slow network still sees at most 5% more traffic.
RAW_MAX_GROWTH = 1.05


@dataclass(frozen=True)
class Payload:
    """The file streamed to every host, its sha256, and how a host unpacks it.

    `format` is what `release.packages.place` switches on: "tar" for an
    inflated tar.gz, else the artifact's own format.
    """

    path: Path
    sha256: str
    format: str


@contextmanager
def shipped(artifact: Artifact) -> Iterator[Payload]:
    """The payload for `artifact`, checked; a temporary plain tar lives as long as the block.

    Raises ArtifactError (before any host is touched) for an archive that
    would unpack outside its release or is not a readable tar.
    """
    if artifact.format not in TAR_FORMATS:
        yield Payload(artifact.path, artifact.sha256, artifact.format)
        return
    with tempfile.NamedTemporaryFile(prefix="fleetdist-payload-", suffix=".tar") as raw:
        sha = _inflate(artifact, raw, limit=int(artifact.size * RAW_MAX_GROWTH))
        if sha is None:
            check_tar(artifact.path)
            yield Payload(artifact.path, artifact.sha256, artifact.format)
            return
        path = Path(raw.name)
        check_tar(path, artifact.path)
        yield Payload(path, sha, "tar")


def _inflate(artifact: Artifact, out: IO[bytes], *, limit: int) -> str | None:
    """Write the inflated artifact to `out` and return its sha256; None to send it as it is.

    None once the output grows past `limit` (so a well-compressed artifact
    costs inflating about `limit` bytes of it, not all of it), or when the
    temporary copy cannot be written: it only saves the hosts work, so a full
    temp directory must not fail the deploy.  Unreadable gzip data must.
    """
    digest, written = hashlib.sha256(), 0
    with gzip.open(artifact.path, "rb") as src:
        while True:
            try:
                chunk = src.read(CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                unreadable = f"{artifact.path}: not a readable tar archive ({exc})"
                raise ArtifactError(unreadable) from None
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                return None
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError:
                return None
    try:
        out.flush()
    except OSError:
        return None
    return digest.hexdigest()
