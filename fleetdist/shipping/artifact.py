"""Artifact: all that deploy needs to know about a built file.

Whatever the format (archive, wheel, venv bundle, OS package), a build ends in
an Artifact whose `release_id` names the directory it becomes on a host.  The
id joins the recipe version and a short hash of the *source tree*, so the
tar.gz and zip of one tree share an id, and a changed byte gives a new one.
Each artifact's `.meta.json` sits beside it; `dist/artifacts.json` indexes a build's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetdist.config.buildspec import KNOWN_FORMATS, TAR_ARCHIVES
from fleetdist.config.names import app_problem, release_id_problem
from fleetdist.errors import ArtifactError

# "tar" is a plain tar fleetdist did not build (see `shipping.importing`).
TAR_FORMATS = ("tar", *TAR_ARCHIVES, "venv")  # checked member by member before upload
SINGLE_FILE = ("pex",)  # shipped as a canonical tar of one executable, `<app>.pex`
DEPLOYABLE = (*TAR_FORMATS, *SINGLE_FILE, "deb")

CHUNK = 1 << 20
# The venv builder writes the bundle's Python ABI here; the host's bundle check reads it.
ABI_FILE = ".fleetdist-abi"


@dataclass(frozen=True)
class Artifact:
    path: Path
    app: str
    version: str
    release_id: str
    format: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def release_id(version: str, tree_hash: str) -> str:
    return f"{version}-{tree_hash[:10]}"


def seal(path: Path, *, app: str, version: str, rid: str, fmt: str) -> Artifact:
    """Hash a finished file, write `<file>.sha256` beside it, and describe it."""
    sha = file_sha256(path)
    path.with_name(path.name + ".sha256").write_text(f"{sha}  {path.name}\n")
    return Artifact(path, app, version, rid, fmt, sha, path.stat().st_size)


def load_artifact(path: Path, *, app: str) -> Artifact:
    """Describe an artifact built earlier, from its `<file>.meta.json` written by the builder.

    The metadata is a file anyone may have edited, and its release id becomes
    a directory name on every host: each field is checked against the grammar
    the recipe's own values pass (`config.names`) before it is believed.
    """
    meta = path.with_name(path.name + ".meta.json")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{meta}: missing or unreadable artifact metadata ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{meta}: expected a JSON object")
    fields = {key: _meta_field(meta, data, key) for key in _META_CHECKS}
    if fields["app"] != app:
        raise ArtifactError(f"{path}: built for app {fields['app']!r}, not {app!r}")
    return Artifact(path, **fields, sha256=file_sha256(path), size=path.stat().st_size)


def _meta_field(meta: Path, data: dict[str, object], key: str) -> str:
    """One checked field of `<file>.meta.json`; a bad one is a one-line error naming it."""
    value = data.get(key)
    problem = "missing" if value is None else _META_CHECKS[key](value)
    if problem or not isinstance(value, str):
        raise ArtifactError(f"{meta}: {key}: {problem or 'expected a string'}")
    return value


def _format_problem(value: object) -> str | None:
    return None if value in (*KNOWN_FORMATS, "tar") else f"{value!r} is not a known format"


_META_CHECKS: dict[str, Callable[[object], str | None]] = {
    "app": app_problem,
    "version": release_id_problem,
    "release_id": release_id_problem,
    "format": _format_problem,
}


def write_meta(artifact: Artifact, **extra: object) -> None:
    """Write `<file>.meta.json`: what `load_artifact` and the build cache read back."""
    meta = artifact.path.with_name(artifact.path.name + ".meta.json")
    data = {**artifact.to_json(), "path": artifact.path.name, **extra}
    meta.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_index(out: Path, artifacts: list[Artifact]) -> None:
    """dist/artifacts.json: one entry per artifact, with the build's provenance."""
    rows = []
    for a in artifacts:
        meta = json.loads(Path(f"{a.path}.meta.json").read_text())
        rows.append(
            {
                "app": a.app,
                "version": a.version,
                "release_id": a.release_id,
                "format": a.format,
                "file": a.path.relative_to(out).as_posix(),
                "size": a.size,
                "sha256": a.sha256,
                "recipe_hash": meta.get("recipe_hash"),
                "machine": meta.get("machine"),
                "built_at": meta.get("built_at"),
            }
        )
    tmp = out / "artifacts.json.tmp"
    tmp.write_text(json.dumps(rows, indent=2) + "\n")
    tmp.replace(out / "artifacts.json")
