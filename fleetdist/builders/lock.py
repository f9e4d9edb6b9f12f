"""Hash-locked dependencies: what the wheelhouse downloads and what builds install, by hash.

A lock is, first found: `build.lock` (a file in the source), `pylock.toml`
(PEP 751), `uv.lock`, or `build.requirements` files carrying `--hash`.
It becomes one requirements file of `name==version --hash=...` lines, and:

- the wheelhouse is filled with `pip wheel --require-hashes` from it, so
  every download is checked against the lock (the app's own wheel is built
  from the sources, with `--no-deps`);
- the builds that install (venv, deb, rpm, pex) then get `pins`: every
  wheel the wheelhouse holds for the lock, and the app's, pinned by the
  sha256 of that very file, with `--require-hashes`, so they install
  exactly what was checked (a dependency the lock lacks fails there).

A locked requirement without a hash fails the build, naming the file and
the requirement, unless the recipe opts out (`build.require_hashes: false`:
the lock's versions are installed without hash checking).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetdist.config.buildspec import BuildSpec
from fleetdist.config.pyproject import normalise, read_toml
from fleetdist.errors import BuildError

LOCK_FILES = ("pylock.toml", "uv.lock")
OPT_OUT = "or set build.require_hashes: false"
HASH = re.compile(r"--hash[= ]\s*(\S+)")


@dataclass(frozen=True)
class Lock:
    """The locked requirements: `lines` as pip reads them; `hashed` if hashes are required."""

    source: str
    lines: tuple[str, ...]
    hashed: bool


def find_lock(spec: BuildSpec, source_dir: Path) -> Lock | None:
    """The app's lock (see module doc), or None when it has none."""
    candidates = [spec.lock] if spec.lock else [source_dir / n for n in LOCK_FILES]
    for path in candidates:
        if path.is_file():
            return _finish(_reader(path)(path), str(path), spec.require_hashes)
    hashed = [r for r in spec.requirements if HASH.search(r.read_text(errors="replace"))]
    if not hashed:
        return None
    lines = [line for req in spec.requirements for line in _requirements_lock(req)]
    return _finish(lines, ", ".join(map(str, spec.requirements)), spec.require_hashes)


def _reader(path: Path) -> Callable[[Path], list[str]]:
    """How to read a lock, by its name: PEP 751's `pylock[.NAME].toml`, `uv.lock`, else
    a requirements file."""
    if path.name == "uv.lock":
        return _uvlock
    if path.name.startswith("pylock.") and path.suffix == ".toml":
        return _pylock
    return _requirements_lock


def _finish(lines: list[str], source: str, require: bool) -> Lock:
    if not require:
        return Lock(source, tuple(HASH.sub("", line).strip() for line in lines), False)
    return Lock(source, tuple(lines), True)


def _requirements_lock(path: Path) -> list[str]:
    """Requirement lines of a requirements file (continuations joined); each needs a hash."""
    out = []
    for number, raw in _logical_lines(path):
        line = raw.split(" #", 1)[0].strip()
        option, _, value = line.partition(" ")
        if option in ("-r", "--requirement"):  # an included file: its lines, checked alike
            out += _requirements_lock(path.parent / value.strip())
            continue
        if line.startswith("-"):  # an option (--find-links, --index-url...): kept as written
            out.append(line)
            continue
        if not line or line.startswith("#"):
            continue
        if not HASH.search(line):
            name = shlex.split(line)[0]
            raise BuildError(
                f"{path}:{number}: {name!r} has no --hash; a hash-locked build needs one on "
                f"every requirement ({OPT_OUT})"
            )
        out.append(line)
    return out


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """(first line number, text) of each line, `\\`-continuations joined, as pip reads them."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), 1):
        start, before = pending or (number, "")
        joined = f"{before} {raw.rstrip()}" if before else raw.rstrip()
        pending = (start, joined[:-1]) if joined.endswith("\\") else None
        if pending is None:
            out.append((start, joined))
    return out + ([pending] if pending else [])


def _line(where: Path, name: str, version: str, hashes: list[str], marker: str = "") -> str:
    if not hashes:
        raise BuildError(
            f"{where}: package {name} {version} has no sha256 hash; a hash-locked build "
            f"needs one for every package ({OPT_OUT})"
        )
    tail = " ".join(f"--hash=sha256:{h}" for h in sorted(set(hashes)))
    return f"{name}=={version}{f' ; {marker}' if marker else ''} {tail}"


def _pylock(path: Path) -> list[str]:
    """PEP 751 `[[packages]]`: every wheel's and the sdist's sha256; the project itself skipped."""
    out = []
    for pkg in _tables(read_toml(path).get("packages"), path, "packages"):
        if "directory" in pkg or "vcs" in pkg or not pkg.get("version"):
            continue  # the project (or a local checkout): built from the sources
        files = [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]
        hashes = [f.get("hashes", {}).get("sha256") for f in files if isinstance(f, dict)]
        marker = pkg.get("marker", "")
        out.append(_line(path, pkg["name"], pkg["version"], [h for h in hashes if h], marker))
    return out


def _uvlock(path: Path) -> list[str]:
    """uv's `[[package]]`: registry packages with their wheel and sdist hashes."""
    out = []
    for pkg in _tables(read_toml(path).get("package"), path, "package"):
        source = pkg.get("source", {})
        if not isinstance(source, dict) or not ({"editable", "virtual", "directory"} & set(source)):
            files = [*pkg.get("wheels", []), *([pkg["sdist"]] if "sdist" in pkg else [])]
            hashes = [str(f.get("hash", "")) for f in files if isinstance(f, dict)]
            sha = [h.removeprefix("sha256:") for h in hashes if h.startswith("sha256:")]
            out.append(_line(path, pkg["name"], pkg["version"], sha))
    return out


def _tables(value: Any, path: Path, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BuildError(f"{path}: {key}: expected an array of tables")
    for i, pkg in enumerate(value):
        if not isinstance(pkg.get("name"), str):
            raise BuildError(f"{path}: {key}[{i}]: no name")
    return value


def write_lock(lock: Lock, dest: Path) -> Path:
    """The lock as one requirements file pip reads (`--require-hashes` when hashed)."""
    head = ["--require-hashes"] if lock.hashed else []
    dest.write_text("\n".join([f"# from {lock.source}", *head, *lock.lines]) + "\n")
    return dest


def _wheel_key(name: str) -> tuple[str, str]:
    """(normalised project name, version) from a wheel file name."""
    project, version = name.split("-")[:2]
    return normalise(project), version


def write_pins(lock: Lock, wheels: Path, app_wheel: Path | None, dest: Path) -> Path:
    """What installing builds install: each locked wheel (and the app's) by its own sha256."""
    wanted = {}
    for line in (line for line in lock.lines if not line.startswith("-")):
        spec = line.split(";")[0].split()[0]
        name, _, version = spec.partition("==")
        wanted[(normalise(name.split("[")[0]), version)] = spec
    found = {_wheel_key(w.name): w for w in sorted(wheels.glob("*.whl"))}
    lines = ["--require-hashes"] if lock.hashed else []
    if app_wheel is not None:
        key = _wheel_key(app_wheel.name)
        wanted[key] = f"{key[0]}=={key[1]}"
    for key, spec in sorted(wanted.items()):
        wheel = found.get(key)
        if wheel is None:
            continue  # a package for another platform (a marker): pip skips it too
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{spec} --hash=sha256:{digest}" if lock.hashed else spec)
    dest.write_text("\n".join(lines) + "\n")
    return dest
