"""The host-side shell functions in `sh/*.sh`, loaded as script fragments.

The functions are written once, as real shell that shellcheck reads; a
step's script assigns its values as quoted variables (`command.assign`),
inlines the libraries it needs, and calls functions.  Full-line comments and
blank lines are dropped from what travels: they are for readers of the
files, and every byte of a script is paid for on a hundred hosts.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fleetdist.release.command import Sh, raw


@cache
def source(name: str, package: str = "fleetdist.release") -> str:
    """The text of `sh/<name>.sh` of `package` without full-line comments and blank lines.

    The builders keep their container and maintainer scripts the same way, in
    `fleetdist/builders/sh/` (`package="fleetdist.builders"`).
    """
    text = files(package).joinpath("sh", f"{name}.sh").read_text(encoding="utf-8")
    kept = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return "\n".join(kept)


def library(*names: str) -> Sh:
    """The named libraries as one fragment (`lib` always comes first)."""
    ordered = ["lib", *(n for n in names if n != "lib")]
    return raw("\n".join(source(n) for n in ordered))
