"""Build a recipe's artifacts: formats x build machines, in parallel, with a content-hash cache.

Order of work: the wheelhouse first (the app's wheel and its requirements,
needed by `wheel`, `venv`, `pex`, `deb` and `rpm`), then every other build
at once: `tar.gz`, `tar.bz2`, `tar.xz`, `zip`, the `pex` (on the
controller, from the wheelhouse), one `venv` bundle on the first build
machine, and one container per build machine that makes all its OS packages.  Each build
logs to `dist/logs/<name>.log` and echoes prefixed lines; the first failure
is raised (exit 1, with the log tail) once the others have finished, so a
failed deb never leaves a half-built venv job running.

Cache: every (format, machine) result leaves a stamp in `dist/.cache/`
naming the source tree hash, a digest of every other input (recipe file,
machine image and script, venv root) and the file it made.  An unchanged
rebuild reuses the file after re-checking its sha256 against its metadata.
Finally `dist/artifacts.json` lists what this build produced or reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fleetdist.builders import lock as locks
from fleetdist.builders import ospkg, wheel
from fleetdist.builders.archive import source_date_epoch, write_tar, write_zip
from fleetdist.builders.buildlog import BuildLog, Echo, stderr_echo
from fleetdist.builders.lock import Lock
from fleetdist.builders.machines import DEFAULT_SCRIPT, PYTHON_SCRIPTS
from fleetdist.builders.pex import build_pex
from fleetdist.builders.stage import scratch, stage_entries
from fleetdist.builders.tree import Entry, tree_hash, walk
from fleetdist.builders.venv import ContainerBuild, bundle_root, container_build, pack_tree
from fleetdist.config.buildspec import (
    KNOWN_FORMATS,
    PACKAGE_FORMATS,
    TAR_ARCHIVES,
    BuildSpec,
    parse_build,
)
from fleetdist.config.schema import Recipe
from fleetdist.errors import ArtifactError, BuildError, ConfigError, FleetdistError
from fleetdist.shipping.artifact import (
    Artifact,
    load_artifact,
    release_id,
    seal,
    write_index,
    write_meta,
)

CONTROLLER = "controller"
ARCHIVES = (*TAR_ARCHIVES, "zip")  # the source tree as it is, made on the controller
NEEDS_WHEELHOUSE = ("wheel", "venv", "pex", *PACKAGE_FORMATS)


def recipe_hash(recipe: Recipe) -> str:
    """A digest of the recipe file itself: a changed recipe means a rebuild."""
    return hashlib.sha256(Path(recipe.source_file).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Inputs:
    """What every build of one run shares."""

    recipe: Recipe
    spec: BuildSpec
    entries: list[Entry]
    rid: str  # version + source tree hash
    rhash: str
    dist: Path
    echo: Echo
    venv_root: str | None
    lock: Lock | None = None

    def key(self, *parts: str) -> str:
        """A cache key: the recipe, SOURCE_DATE_EPOCH (in every output's bytes), the lock
        and `parts`."""
        epoch = str(source_date_epoch())
        locked = [str(self.lock)] if self.lock else []
        return hashlib.sha256("\0".join([self.rhash, epoch, *locked, *parts]).encode()).hexdigest()

    @property
    def pins(self) -> Path | None:
        """With a lock: what installing builds install, by hash (see `builders.lock`)."""
        if self.lock is None:
            return None
        return self.dist / wheel.WHEELHOUSE / f"{self.recipe.app}-{self.rid}.pins.txt"

    def log(self, name: str) -> BuildLog:
        return BuildLog(name, self.dist / "logs" / f"{name.replace('/', '-')}.log", self.echo)


def _stamp(inp: Inputs, fmt: str, machine: str) -> Path:
    return inp.dist / ".cache" / f"{inp.recipe.app}.{fmt}@{machine}.json"


def _cached(inp: Inputs, fmt: str, machine: str, key: str) -> Artifact | None:
    try:
        stamp = json.loads(_stamp(inp, fmt, machine).read_text())
        if stamp.get("tree") != inp.rid or stamp.get("key") != key:
            return None
        artifact = load_artifact(inp.dist / stamp["file"], app=inp.recipe.app)
        meta = json.loads(Path(f"{artifact.path}.meta.json").read_text())
    except (OSError, ValueError, KeyError, ArtifactError):
        return None
    return artifact if meta.get("sha256") == artifact.sha256 else None


def _record(inp: Inputs, artifact: Artifact, machine: str, key: str) -> Artifact:
    built = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_meta(artifact, recipe_hash=inp.rhash, machine=machine, built_at=built)
    stamp = _stamp(inp, artifact.format, machine)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    rel = artifact.path.relative_to(inp.dist).as_posix()
    stamp.write_text(json.dumps({"tree": inp.rid, "key": key, "file": rel}) + "\n")
    return artifact


def _seal(inp: Inputs, path: Path, fmt: str, rid: str | None = None) -> Artifact:
    r = inp.recipe
    return seal(path, app=r.app, version=r.version, rid=rid or inp.rid, fmt=fmt)


# -- the builds ----------------------------------------------------------------


def archive_path(out: Path, app: str, rid: str, fmt: str) -> Path:
    """Where `build` writes an archive format of a release."""
    return out / f"{app}-{rid}.{fmt}"


def planned_archive(recipe: Recipe, out: Path) -> tuple[str, Path]:
    """The release id of the source tree as it is now, and where its tar.gz is (or
    would be) built: read-only, for `--dry-run`."""
    entries = walk(recipe.source, f"{recipe.source_file}: source.path")
    rid = release_id(recipe.version, tree_hash(entries))
    return rid, archive_path(out, recipe.app, rid, "tar.gz")


def _archives(inp: Inputs, fmt: str) -> list[Artifact]:
    with inp.log(fmt) as log:
        path = archive_path(inp.dist, inp.recipe.app, inp.rid, fmt)
        if fmt == "zip":
            write_zip(inp.entries, path)
        else:
            write_tar(inp.entries, path, fmt)
        log.line(f"wrote {path.name} ({len(inp.entries)} entries)")
        return [_record(inp, _seal(inp, path, fmt), CONTROLLER, inp.key(fmt))]


@dataclass(frozen=True)
class Wheelhouse:
    """What the wheel build leaves for the others: the app's wheel and its `name==version`."""

    artifacts: list[Artifact]  # the wheel, when `wheel` was asked for
    requirement: list[str]  # [] or ["name==version"]
    app_wheel: Path | None = None


def _wheelhouse(inp: Inputs, want_wheel: bool) -> Wheelhouse:
    """Build (or reuse) the app wheel and the wheelhouse."""
    key = inp.key("wheel", *map(str, inp.spec.requirements))
    cached = _cached(inp, "wheel", CONTROLLER, key)
    wheels = inp.dist / wheel.WHEELHOUSE
    pinned = inp.pins is None or inp.pins.is_file()
    if cached is not None and (wheels / cached.path.name).is_file() and pinned:
        made = [cached] if want_wheel else []
        return Wheelhouse(made, [wheel.requirement_of(cached.path)], cached.path)
    with inp.log("wheel") as log, scratch("wheel") as tmp:
        src = tmp / "src"
        stage_entries(inp.entries, src)
        app_wheel = None
        if wheel.is_python_project(src):
            app_wheel = wheel.build_wheel(src, inp.dist, log, timeout=inp.spec.timeout)
        elif want_wheel:
            raise BuildError(f"build wheel: {inp.recipe.source.path} has no pyproject.toml")
        locked = locks.write_lock(inp.lock, tmp / "locked.txt") if inp.lock else None
        wheel.build_wheelhouse(
            app_wheel, inp.spec.requirements, wheels, log, timeout=inp.spec.timeout, locked=locked
        )
        if inp.lock and inp.pins:
            locks.write_pins(inp.lock, wheels, app_wheel, inp.pins)
            log.line(f"locked by {inp.lock.source}: installs pinned in {inp.pins.name}")
        if app_wheel is None:
            return Wheelhouse([], [])
        artifact = _record(inp, _seal(inp, app_wheel, "wheel"), CONTROLLER, key)
        log.line(f"wrote {app_wheel.name} and the wheelhouse {wheels}")
    made = [artifact] if want_wheel else []
    return Wheelhouse(made, [wheel.requirement_of(app_wheel)], app_wheel)


def _pex_key(inp: Inputs, house: Wheelhouse) -> str:
    return inp.key(
        "pex", *house.requirement, *map(str, inp.spec.requirements), inp.spec.entry_point
    )


def _pex(inp: Inputs, house: Wheelhouse) -> list[Artifact]:
    with inp.log("pex") as log:
        if house.app_wheel is None:
            raise log.fail(f"{inp.recipe.source.path} has no pyproject.toml, so no wheel to pex")
        path = inp.dist / f"{inp.recipe.app}-{inp.rid}.pex"
        build_pex(
            house.app_wheel,
            None if inp.pins else house.requirement[0],
            (inp.pins,) if inp.pins else inp.spec.requirements,
            inp.dist / wheel.WHEELHOUSE,
            path,
            log,
            entry_point=inp.spec.entry_point,
            app=inp.recipe.app,
            timeout=inp.spec.timeout,
        )
        log.line(f"wrote {path.name}")
        return [_record(inp, _seal(inp, path, "pex"), CONTROLLER, _pex_key(inp, house))]


def _container_job(inp: Inputs, requirement: list[str], machine_index: int) -> ContainerBuild:
    return ContainerBuild(
        recipe=inp.recipe,
        spec=inp.spec,
        machine=inp.spec.machines[machine_index],
        prefix="",
        staged=Path(),
        wheels=inp.dist / wheel.WHEELHOUSE,
        requirement=[] if inp.pins else requirement,
        pins=inp.pins.name if inp.pins else None,
    )


def _venv(inp: Inputs, requirement: list[str]) -> list[Artifact]:
    assert inp.venv_root is not None
    job = _container_job(inp, requirement, 0)
    prefix = f"{inp.venv_root}/releases/{inp.rid}"
    with inp.log(f"venv/{job.machine.name}") as log, scratch("venv") as tmp:
        stage_entries(inp.entries, tmp / "src")
        build = dataclasses.replace(job, prefix=prefix, staged=tmp / "src", export_tree=True)
        log.line(f"building the bundle at {prefix} (where hosts will run it)")
        container_build(build, tmp / "out", log)
        path = inp.dist / f"{inp.recipe.app}-{inp.rid}.venv.tar.gz"
        pack_tree(tmp / "out" / "tree", path, prefix)
        log.line(f"wrote {path.name}")
        artifact = _seal(inp, path, "venv")
    return [_record(inp, artifact, job.machine.name, _venv_key(inp, job))]


def _venv_key(inp: Inputs, job: ContainerBuild) -> str:
    m = job.machine
    return inp.key("venv", m.image, m.script or DEFAULT_SCRIPT, str(inp.venv_root), PYTHON_SCRIPTS)


def _pkg_key(inp: Inputs, job: ContainerBuild) -> str:
    m = job.machine
    return inp.key("pkg", m.image, m.script or DEFAULT_SCRIPT, PYTHON_SCRIPTS)


def _packages(inp: Inputs, requirement: list[str], index: int, fmts: list[str]) -> list[Artifact]:
    job = _container_job(inp, requirement, index)
    name = f"{'+'.join(fmts)}/{job.machine.name}"
    with inp.log(name) as log, scratch("pkg") as tmp:
        stage_entries(inp.entries, tmp / "src")
        build = dataclasses.replace(
            job, prefix=ospkg.prefix_of(inp.recipe), staged=tmp / "src", formats=fmts
        )
        log.line(f"packaging {ospkg.package_name(inp.recipe)} under {build.prefix}")
        made = ospkg.build_packages(build, tmp, inp.dist / job.machine.name, log)
        artifacts = [_seal(inp, made[f], f, inp.recipe.version) for f in fmts]
    key = _pkg_key(inp, job)
    return [_record(inp, a, job.machine.name, key) for a in artifacts]


# -- scheduling ----------------------------------------------------------------


Job = Callable[[], list[Artifact]]


def _plan(inp: Inputs, chosen: list[str], house: Wheelhouse) -> list[Job]:
    """The jobs still to run; cached results are returned by `_reuse` instead."""
    jobs: list[Job] = []
    requirement = house.requirement
    for fmt in ARCHIVES:
        if fmt in chosen and _cached(inp, fmt, CONTROLLER, inp.key(fmt)) is None:
            jobs.append(lambda fmt=fmt: _archives(inp, fmt))  # type: ignore[misc]
    if "pex" in chosen and _cached(inp, "pex", CONTROLLER, _pex_key(inp, house)) is None:
        jobs.append(lambda: _pex(inp, house))
    if "venv" in chosen:
        job = _container_job(inp, requirement, 0)
        if _cached(inp, "venv", job.machine.name, _venv_key(inp, job)) is None:
            jobs.append(lambda: _venv(inp, requirement))
    pkg_fmts = [f for f in PACKAGE_FORMATS if f in chosen]
    for index, machine in enumerate(inp.spec.machines if pkg_fmts else ()):
        key = _pkg_key(inp, _container_job(inp, requirement, index))
        todo = [f for f in pkg_fmts if _cached(inp, f, machine.name, key) is None]
        if todo:
            jobs.append(lambda i=index, t=todo: _packages(inp, requirement, i, t))  # type: ignore[misc]
    return jobs


def _reuse(inp: Inputs, chosen: list[str], house: Wheelhouse) -> list[Artifact]:
    found = []
    keys = {fmt: inp.key(fmt) for fmt in ARCHIVES} | {"pex": _pex_key(inp, house)}
    for fmt, key in keys.items():
        hit = _cached(inp, fmt, CONTROLLER, key) if fmt in chosen else None
        found += [hit] if hit else []
    for index, machine in enumerate(inp.spec.machines):
        job = _container_job(inp, house.requirement, index)
        if "venv" in chosen and index == 0:
            hit = _cached(inp, "venv", machine.name, _venv_key(inp, job))
            found += [hit] if hit else []
        for fmt in PACKAGE_FORMATS:
            hit = _cached(inp, fmt, machine.name, _pkg_key(inp, job)) if fmt in chosen else None
            found += [hit] if hit else []
    return found


def _run_parallel(jobs: list[Job]) -> list[Artifact]:
    if not jobs:
        return []
    errors: list[BaseException] = []
    made: list[Artifact] = []
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        for future in [pool.submit(job) for job in jobs]:
            try:
                made += future.result()
            except BaseException as exc:  # collected; the first is raised after all finish
                errors.append(exc)
    if errors:
        first = errors[0]
        if isinstance(first, FleetdistError):
            raise first
        raise BuildError(f"build failed: {type(first).__name__}: {first}") from first
    return made


def build_recipe(
    recipe: Recipe,
    out: Path,
    formats: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    env_name: str = "prod",
    echo: Echo = stderr_echo,
) -> list[Artifact]:
    """Build (or reuse) each requested format; unknown formats are a usage error (exit 2)."""
    chosen = list(dict.fromkeys(formats or recipe.formats))
    for fmt in chosen:
        if fmt not in KNOWN_FORMATS:
            known = ", ".join(KNOWN_FORMATS)
            raise ConfigError(f"--formats: unknown format {fmt!r} (known: {known})")
    recipe_dir = Path(recipe.source_file).parent
    spec = parse_build(recipe.build, recipe.source_file, recipe_dir, recipe.source.path)
    entries = walk(recipe.source, f"{recipe.source_file}: source.path")
    venv_root = bundle_root(recipe, env or {}, env_name) if "venv" in chosen else None
    out.mkdir(parents=True, exist_ok=True)
    lock = (
        locks.find_lock(spec, recipe.source.path) if set(NEEDS_WHEELHOUSE) & set(chosen) else None
    )
    inp = Inputs(
        recipe,
        spec,
        entries,
        release_id(recipe.version, tree_hash(entries)),
        recipe_hash(recipe),
        out,
        echo,
        venv_root,
        lock,
    )
    artifacts: list[Artifact] = []
    house = Wheelhouse([], [])
    if set(NEEDS_WHEELHOUSE) & set(chosen):
        house = _wheelhouse(inp, "wheel" in chosen)
        artifacts += house.artifacts
    artifacts += _reuse(inp, chosen, house)
    artifacts += _run_parallel(_plan(inp, chosen, house))
    order = {fmt: i for i, fmt in enumerate(chosen)}
    artifacts.sort(key=lambda a: (order[a.format], str(a.path)))
    write_index(out, artifacts)
    return artifacts
