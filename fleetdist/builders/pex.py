"""Single-file releases: a PEX (pex from PyPI) of the app and its requirements.

The PEX is built on the controller from the wheelhouse alone (`--no-pypi`,
so it holds exactly what the wheel and venv builds hold), with the shebang
`/usr/bin/env python3`: a host runs it with its own python3, no venv and no
install.  Its entry point is `build.entry_point` (a console script name, or
`module[:function]`), else the app's console script named like the app, else
its only console script.

Same inputs, same bytes: pex writes entries in a fixed order with fixed
timestamps; `restamp` then sets every entry's time to SOURCE_DATE_EPOCH
(pex would always say 1980-01-01), keeping names, order, modes and data.
"""

from __future__ import annotations

import configparser
import sys
import time
import zipfile
from pathlib import Path

from fleetdist.builders.archive import source_date_epoch
from fleetdist.builders.buildlog import BuildLog
from fleetdist.errors import BuildError

SHEBANG = "/usr/bin/env python3"


def console_scripts(app_wheel: Path) -> list[str]:
    """The console scripts the app's wheel declares (its entry_points.txt), sorted."""
    with zipfile.ZipFile(app_wheel) as whl:
        names = [n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt")]
        if not names:
            return []
        text = whl.read(names[0]).decode("utf-8", errors="replace")
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names keep their case
    parser.read_string(text)
    if not parser.has_section("console_scripts"):
        return []
    return sorted(parser.options("console_scripts"))


def entry_args(app: str, chosen: str, scripts: list[str]) -> list[str]:
    """pex's entry point flags: `-m module[:fn]`, `-c script`, or none (a bare interpreter)."""
    if chosen:
        return ["-c", chosen] if chosen in scripts else ["-m", chosen]
    if app in scripts:
        return ["-c", app]
    return ["-c", scripts[0]] if len(scripts) == 1 else []


def build_pex(
    app_wheel: Path,
    requirement: str | None,
    requirements: tuple[Path, ...],
    wheels: Path,
    dest: Path,
    log: BuildLog,
    *,
    entry_point: str,
    app: str,
    timeout: float,
) -> None:
    """`python -m pex` from the wheelhouse into `dest`, then restamped."""
    tmp = dest.with_name(dest.name + ".tmp")
    argv = [sys.executable, "-m", "pex", "--no-pypi", "--find-links", str(wheels)]
    argv += [requirement] if requirement else []  # None: the pinned requirements hold the app
    for req in requirements:
        argv += ["-r", str(req)]
    argv += entry_args(app, entry_point, console_scripts(app_wheel))
    argv += ["--python-shebang", SHEBANG, "--no-compile", "--no-use-system-time"]
    log.run([*argv, "-o", str(tmp)], what="pex", env={"PYTHONHASHSEED": "0"}, timeout=timeout)
    restamp(tmp, dest, source_date_epoch())


def restamp(src: Path, dest: Path, epoch: int) -> None:
    """Copy the PEX `src` to `dest` with every zip entry dated `epoch`; nothing else changes."""
    stamp = time.gmtime(epoch)[:6]
    raw = src.read_bytes()
    if not raw.startswith(b"#!"):
        raise BuildError(f"pex: {src.name} has no shebang line")
    shebang = raw[: raw.index(b"\n") + 1]
    with zipfile.ZipFile(src) as old, dest.open("wb") as out:
        out.write(shebang)
        with zipfile.ZipFile(out, "w") as new:
            for info in old.infolist():
                copy = zipfile.ZipInfo(info.filename, date_time=stamp)
                copy.compress_type, copy.external_attr = info.compress_type, info.external_attr
                copy.create_system = info.create_system
                new.writestr(copy, old.read(info))
    dest.chmod(0o755)
    src.unlink()
