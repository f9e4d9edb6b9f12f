"""Wheels: the app's own wheel (PyPA `build`) and a wheelhouse of its requirements.

The wheelhouse (`dist/wheels/`) holds a wheel for the app and for every
requirement, built on the controller where the package index is reachable;
hosts and build containers then install with `pip install --no-index
--find-links`, so nothing downstream needs an index, and a container build is
as offline as the wheelhouse is complete.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path

from fleetdist.builders.archive import source_date_epoch
from fleetdist.builders.buildlog import BuildLog
from fleetdist.builders.stage import scratch, stage_entries
from fleetdist.builders.tree import walk
from fleetdist.config.schema import Recipe
from fleetdist.errors import BuildError

WHEELHOUSE = "wheels"


def is_python_project(src: Path) -> bool:
    return (src / "pyproject.toml").is_file() or (src / "setup.py").is_file()


def _env() -> dict[str, str]:
    # SOURCE_DATE_EPOCH makes the wheel's zip timestamps fixed: same tree, same bytes.
    return {"SOURCE_DATE_EPOCH": str(source_date_epoch()), "PYTHONHASHSEED": "0"}


def build_wheel(staged: Path, out: Path, log: BuildLog, *, timeout: float) -> Path:
    """Build one wheel from a staged source copy with PyPA `build` into `out`."""
    if not is_python_project(staged):
        raise BuildError(
            f"build {log.name}: {staged.name}: no pyproject.toml or setup.py, so no wheel "
            "(drop 'wheel' from formats)"
        )
    tmp = staged.parent / "wheel-out"
    argv = [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp), str(staged)]
    log.run(argv, what="python -m build --wheel", env=_env(), timeout=timeout)
    built = sorted(tmp.glob("*.whl"))
    if len(built) != 1:
        raise log.fail(f"expected one wheel, got {[p.name for p in built]}")
    out.mkdir(parents=True, exist_ok=True)
    dest = out / built[0].name
    shutil.copyfile(built[0], dest)
    return dest


def build_wheelhouse(
    app_wheel: Path | None,
    requirements: tuple[Path, ...],
    wheels: Path,
    log: BuildLog,
    *,
    timeout: float,
    locked: Path | None = None,
) -> None:
    """`pip wheel -w wheels/` for the app wheel's dependencies and the requirements files,
    or with a lock (see `builders.lock`), for exactly the locked requirements.

    A requirement that cannot be built, or whose download does not match its
    locked hash, fails here, with pip's own last lines.
    """
    wheels.mkdir(parents=True, exist_ok=True)
    if app_wheel:
        # pip keeps a same-named wheel already in the wheelhouse, and the app's
        # wheel name only carries its pyproject version: drop the stale one.
        (wheels / app_wheel.name).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pip", "wheel", "--no-input", "--wheel-dir", str(wheels)]
    if locked is not None:  # the app alone, then exactly the lock, every download by hash
        if app_wheel:
            log.run([*argv, "--no-deps", str(app_wheel)], what="pip wheel (app)", timeout=timeout)
        what = "pip wheel (hash-locked requirements)"
        log.run([*argv, "-r", str(locked)], what=what, env=_env(), timeout=timeout)
        return
    targets: list[str] = [str(app_wheel)] if app_wheel else []
    for req in requirements:
        targets += ["-r", str(req)]
    if not targets:
        log.line("no app wheel and no requirements: empty wheelhouse")
        return
    log.run([*argv, *targets], what="pip wheel (requirements)", env=_env(), timeout=timeout)


def dynamic_version(recipe: Recipe) -> str:
    """A dynamic `[project].version`, as the project's build backend writes it in the wheel.

    The backend runs on a staged copy of the selected sources (it writes
    `*.egg-info` beside them) through PyPA `build`'s metadata hook: the
    project's own modules are never imported by fleetdist.
    """
    import build.util  # the build stack: only for recipes with a dynamic version

    where = f"{recipe.source.path}/pyproject.toml: project.version (dynamic)"
    with scratch("metadata") as tmp:
        stage_entries(walk(recipe.source, f"{recipe.source_file}: source.path"), tmp / "src")
        try:
            with contextlib.redirect_stdout(sys.stderr):
                metadata = build.util.project_wheel_metadata(tmp / "src", isolated=True)
        except Exception as exc:  # build's errors have many types; all mean no metadata
            raise BuildError(f"{where}: the build backend gave no metadata ({exc})") from None
    version = metadata.json.get("version")
    if not isinstance(version, str) or not version:
        raise BuildError(f"{where}: the wheel metadata names no version")
    return version


def requirement_of(app_wheel: Path) -> str:
    """`name==version` from a wheel's file name, so pip installs it by name from the wheelhouse."""
    name, version = app_wheel.name.split("-")[:2]
    return f"{name}=={version}"
