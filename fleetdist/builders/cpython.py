"""A CPython of the recipe's `python_version`, built from Debian's source once per build machine.

`python: bundled` with `python_version: "3.13"` (vdist's default: the
package carries its own interpreter of the version you choose) needs a
CPython the build image does not have.  `sh/build-python.sh` builds it in
a clean container of the build machine, from the source package of the
Debian suite that carries it (`BUNDLED_PYTHONS`), and hands back a
relocatable tree as one tar.  That takes minutes on a small machine, so the
tar is cached in the user's cache dir, keyed by what could change it: the
machine, its image id, the version and suite, and the text of the build
script.  Every later build on that machine (any app, any recipe) reuses it;
a rebuilt image or an edited script builds it again.  The package build then
unpacks it as `<prefix>/python` and makes the venv on it (sh/build.sh).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from fleetdist.builders.buildlog import BuildLog
from fleetdist.builders.container import Mount, run_container
from fleetdist.builders.machines import BUILD_PYTHON
from fleetdist.builders.stage import scratch
from fleetdist.config.buildspec import BUNDLED_PYTHONS, Machine
from fleetdist.release.command import assign, raw, script

MOUNT = "/fleetdist"


def cache_dir() -> Path:
    """Where built interpreters are kept: `$XDG_CACHE_HOME/fleetdist/python` (~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetdist" / "python"


def cache_key(machine: Machine, image: str, version: str) -> str:
    """16 hex of a digest of everything the built tree depends on.

    `image` is the machine image's id, not its tag: a rebuilt build image has
    other libraries to link against, so it gets its own interpreter.
    """
    parts = [machine.name, image, version, BUNDLED_PYTHONS[version], BUILD_PYTHON]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def cached_tar(machine: Machine, image: str, version: str) -> Path:
    """The cache entry's path: `<machine>-<version>-<key>.tar`."""
    return cache_dir() / f"{machine.name}-{version}-{cache_key(machine, image, version)}.tar"


def container_script(version: str) -> str:
    """What the build container runs: the values as quoted variables, then the script."""
    values = [assign("PYTHON_VERSION", version), assign("SUITE", BUNDLED_PYTHONS[version])]
    values.append(assign("OWNER", f"{os.getuid()}:{os.getgid()}"))
    return "#!/bin/sh\n" + script([*values, raw(BUILD_PYTHON)]).text + "\n"


def ensure_python(
    machine: Machine, image: str, version: str, log: BuildLog, *, timeout: float
) -> Path:
    """The cached tar of CPython `version` for `machine`, built first if missing.

    A lock file per entry makes parallel builds of one run (a venv bundle and
    the packages, say) wait for one build instead of starting two.
    """
    tar = cached_tar(machine, image, version)
    tar.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{tar}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tar.is_file():
            log.line(f"CPython {version} for {machine.name}: reusing the cached build {tar}")
            return tar
        suite = BUNDLED_PYTHONS[version]
        log.line(
            f"CPython {version} for {machine.name}: building it from Debian {suite}'s source "
            f"(once per build machine; minutes) into {tar}"
        )
        _build(machine, version, tar, log, timeout)
        _prune(tar)
    return tar


def _build(machine: Machine, version: str, tar: Path, log: BuildLog, timeout: float) -> None:
    with scratch("python") as tmp:
        (tmp / "pkg").mkdir()
        (tmp / "pkg" / "build-python.sh").write_text(container_script(version))
        (tmp / "out").mkdir()
        run_container(
            machine.image,
            ["sh", f"{MOUNT}/pkg/build-python.sh"],
            mounts=[Mount(tmp / "pkg", f"{MOUNT}/pkg"), Mount(tmp / "out", f"{MOUNT}/out", False)],
            env={"SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "315532800")},
            log=log,
            labels={"machine": machine.name, "python": version},
            timeout=timeout,
        )
        made = tmp / "out" / "python.tar"
        if not made.is_file():
            raise log.fail(f"building CPython {version} left no python.tar")
        # Renamed into place only when whole: an interrupted build leaves no entry.
        part = tar.with_name(f"{tar.name}.part")
        shutil.move(made, part)
        part.replace(tar)


def _prune(tar: Path) -> None:
    """Drop older entries of the same machine and version (another image or script)."""
    stem = tar.name.rsplit("-", 1)[0]
    for old in tar.parent.glob(f"{stem}-*.tar"):
        if old != tar:
            old.unlink(missing_ok=True)
            Path(f"{old}.lock").unlink(missing_ok=True)
