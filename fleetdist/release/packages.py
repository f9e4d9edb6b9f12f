"""How a verified upload becomes a staged release, by payload format.

The shell is `sh/stage.sh`.  An archive payload is fleetdist's own canonical
tar (see `shipping.payload`), unpacked into a staging directory of this run that
gets its marker and is then renamed into `releases/`, so a half-unpacked
release never looks staged.  A `.deb` is not unpacked by fleetdist: the
host's package manager installs it (resolving its dependencies) into
`/opt/<app>/releases/<version>/`, which already holds fleetdist's release
marker, so activation and rollback flip `current` exactly as for archives,
and rollback never reinstalls.

A venv bundle unpacks like a tar, but before the tests `bundle_check` proves
it can run here: every shebang in `venv/bin` names an interpreter that
exists on this host, and the interpreter the venv was made from is there
with the same Python ABI (SOABI) the bundle was built against.
"""

from __future__ import annotations

from fleetdist.release.command import Sh, raw
from fleetdist.shipping.artifact import ABI_FILE

__all__ = ["ABI_FILE", "bundle_check", "place"]


def place(fmt: str) -> Sh:
    """The call that turns the verified upload "$A" into "$REL/$ID".

    `fmt` is the payload's (see `shipping.payload`): "tar" a plain canonical
    tar, "tar.gz" a gzipped one, "deb" a package.
    """
    if fmt == "deb":
        return raw("install_deb")
    return raw("unpack_tar" if fmt == "tar" else "unpack_tar z")


def bundle_check() -> Sh:
    """Fail (listing every problem) unless the venv bundle's interpreters fit this host."""
    return raw("bundle_check")
