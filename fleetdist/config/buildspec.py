"""The recipe's `build:` section, validated strictly into a frozen BuildSpec.

The loader calls `parse_build` once so a typo (`build.bulid_deps`) fails at
load time with `file: build.bulid_deps: unknown key`; builders call it again
on the raw mapping kept in `Recipe.build` (it is pure and cheap).

Build machines merge in one order, later wins per machine and per key:
    built-in machines  <  `machines_file` (YAML, like vdist's build_machines.json)
                       <  inline `machines:` entries
A machine is an image plus an optional build script template (see
`fleetdist.builders.machines` for the default and its placeholders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdist.config.fields import Fields, read_yaml
from fleetdist.errors import ConfigError

KNOWN_FORMATS = ("tar.gz", "tar.bz2", "tar.xz", "zip", "wheel", "venv", "pex", "deb", "rpm")
TAR_ARCHIVES = ("tar.gz", "tar.bz2", "tar.xz")  # the source tree as a tar, compressed three ways
PACKAGE_FORMATS = ("deb", "rpm")
MAINTAINER_SCRIPTS = ("preinstall", "postinstall", "preremove", "postremove")
BUILTIN_MACHINES: dict[str, dict[str, Any]] = {
    # Built by scripts/build-image.sh FROM the debootstrapped base image.
    "bookworm": {"image": "fleetdist/build:bookworm"},
}
# `python_version` -> the Debian suite whose source package builds it (no
# suite carries 3.12's source any more, so it is not offered).
BUNDLED_PYTHONS: dict[str, str] = {
    "3.11": "bookworm",
    "3.13": "trixie",
    "3.14": "sid",
    "3.15": "sid",
}
IMAGE_HINT = "build it with scripts/build-image.sh (needs scripts/base-image.sh's base image)"


@dataclass(frozen=True)
class Machine:
    """One build machine: the image a clean container starts from, and its script."""

    name: str
    image: str
    script: str | None = None  # None: fleetdist.builders.machines.DEFAULT_SCRIPT
    build_deps: tuple[str, ...] = ()
    hint: str = IMAGE_HINT  # how to get `image` when it is missing


@dataclass(frozen=True)
class BuildSpec:
    """Everything builders need beyond the recipe's top level; defaults build on bookworm."""

    machines: tuple[Machine, ...]
    requirements: tuple[Path, ...] = ()
    build_deps: tuple[str, ...] = ()
    runtime_deps: tuple[str, ...] = ()
    scripts: dict[str, Path] = field(default_factory=dict, hash=False, compare=False)
    nfpm: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    python: str = "system"
    python_version: str = ""  # with `bundled`: build this CPython (a BUNDLED_PYTHONS key)
    flip_current: str = "fleetdist"
    maintainer: str = "fleetdist <root@localhost>"
    description: str = ""
    timeout: float = 1800.0
    entry_point: str = ""  # the pex's: a console script, or module[:function]
    lock: Path | None = None  # pylock.toml, uv.lock or a hashed requirements file
    require_hashes: bool = True  # a lock's requirements must all carry a hash


def _choice(f: Fields, key: str, allowed: tuple[str, ...]) -> str:
    value = f.text(key, allowed[0]) or allowed[0]
    if value not in allowed:
        raise f.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _machine_entry(f: Fields, name: str, base: dict[str, Any]) -> dict[str, Any]:
    m = f.sub(name)
    out = dict(base)
    for key in ("image", "script", "hint"):
        if m.has(key):
            out[key] = m.text(key, required=True)
    if m.has("build_deps"):
        out["build_deps"] = m.strings("build_deps")
    m.done()
    return out


def _machine_defs(f: Fields, base_dir: Path) -> dict[str, dict[str, Any]]:
    defs = {name: dict(v) for name, v in BUILTIN_MACHINES.items()}
    file_name = f.text("machines_file")
    if file_name:
        path = base_dir / file_name
        mf = Fields(read_yaml(path), str(path))
        for name in list(mf.data):
            defs[str(name)] = _machine_entry(mf, str(name), defs.get(str(name), {}))
        mf.done()
    return defs


def _machines(f: Fields, base_dir: Path) -> tuple[Machine, ...]:
    defs = _machine_defs(f, base_dir)
    raw = f.raw("machines")
    if raw is None:
        chosen = ["bookworm"]
    elif isinstance(raw, list):
        chosen = list(f.strings("machines"))
    else:
        mf = f.sub("machines")
        for name in list(mf.data):
            defs[str(name)] = _machine_entry(mf, str(name), defs.get(str(name), {}))
        mf.done()
        chosen = [str(n) for n in mf.data]
    machines = []
    for name in chosen:
        spec = defs.get(name)
        if spec is None or "image" not in spec:
            known = ", ".join(sorted(n for n, d in defs.items() if "image" in d))
            raise f.error("machines", f"machine {name!r} has no image (known: {known})")
        machines.append(Machine(name=name, **spec))
    if not machines:
        raise f.error("machines", "name at least one build machine")
    return tuple(machines)


def parse_build(data: Any, source: str, base_dir: Path, source_dir: Path) -> BuildSpec:
    """Validate a recipe's raw `build:` mapping.

    `base_dir` is the recipe's folder (maintainer scripts, machines_file);
    `source_dir` is the app's source (requirements files live there).
    """
    f = Fields(data, source, "build")
    spec = BuildSpec(
        machines=_machines(f, base_dir),
        requirements=tuple(source_dir / r for r in f.strings("requirements")),
        build_deps=f.strings("build_deps"),
        runtime_deps=f.strings("runtime_deps"),
        scripts=_scripts(f, base_dir),
        nfpm=_mapping(f, "nfpm"),
        python=_choice(f, "python", ("system", "bundled")),
        python_version=_python_version(f),
        flip_current=_choice(f, "flip_current", ("fleetdist", "postinst")),
        maintainer=f.text("maintainer", BuildSpec.maintainer) or BuildSpec.maintainer,
        description=f.text("description", "") or "",
        timeout=f.number("timeout", 1800.0),
        entry_point=f.text("entry_point", "") or "",
        lock=_lock(f, source_dir),
        require_hashes=_flag(f, "require_hashes", True),
    )
    f.done()
    for i, path in enumerate(spec.requirements):
        if not path.is_file():
            raise f.error(f"requirements[{i}]", f"{path} is not a file")
    return spec


def _python_version(f: Fields) -> str:
    """`python_version`: only with `python: bundled`, one of BUNDLED_PYTHONS, as a string
    (YAML reads an unquoted 3.10 as the number 3.1)."""
    value = f.raw("python_version")
    if value is None:
        return ""
    known = ", ".join(BUNDLED_PYTHONS)
    if not isinstance(value, str):
        raise f.error("python_version", f'quote the version, as in "3.13" (known: {known})')
    if value not in BUNDLED_PYTHONS:
        raise f.error("python_version", f"no Debian source for CPython {value!r} (known: {known})")
    if f.raw("python") != "bundled":
        raise f.error("python_version", "needs `python: bundled` (the package carries it)")
    return value


def _lock(f: Fields, source_dir: Path) -> Path | None:
    name = f.text("lock")
    if not name:
        return None
    path = source_dir / name
    if not path.is_file():
        raise f.error("lock", f"{path} is not a file")
    return path


def _flag(f: Fields, key: str, default: bool) -> bool:
    value = f.raw(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise f.error(key, "expected true or false")
    return value


def _scripts(f: Fields, base_dir: Path) -> dict[str, Path]:
    s = f.sub("scripts")
    out: dict[str, Path] = {}
    for key in MAINTAINER_SCRIPTS:
        name = s.text(key)
        if name:
            path = base_dir / name
            if not path.is_file():
                raise s.error(key, f"{path} is not a file")
            out[key] = path
    s.done()
    return out


def _mapping(f: Fields, key: str) -> dict[str, Any]:
    value = f.raw(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise f.error(key, "expected a mapping of extra nfpm options")
    return value


def check_formats(formats: tuple[str, ...], source: str, where: str = "formats") -> None:
    """Reject a format no builder knows, naming `file: formats[i]`."""
    known = ", ".join(KNOWN_FORMATS)
    for i, fmt in enumerate(formats):
        if fmt not in KNOWN_FORMATS:
            reason = f"unknown format {fmt!r} (known: {known})"
            raise ConfigError.at(source, f"{where}[{i}]", reason)
