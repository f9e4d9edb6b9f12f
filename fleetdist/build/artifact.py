"""Artifact: all that deploy needs to know about a built file.

Whatever the format (archive, wheel, venv bundle, OS package), a build ends in
an Artifact whose `release_id` names the directory it becomes on a host.  The
id joins the recipe version and a short hash of the *source tree*, so the
tar.gz and zip of one tree share an id, and a changed byte gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetdist.errors import ArtifactError

DEPLOYABLE = ("tar.gz", "venv", "deb")
TAR_FORMATS = ("tar.gz", "venv")  # checked member by member before upload

CHUNK = 1 << 20


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
    """Describe an artifact built earlier, from its `<file>.meta.json` written by the builder."""
    meta = path.with_name(path.name + ".meta.json")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact")
    try:
        data = json.loads(meta.read_text())
        artifact = Artifact(
            path,
            data["app"],
            data["version"],
            data["release_id"],
            data["format"],
            file_sha256(path),
            path.stat().st_size,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{meta}: missing or unreadable artifact metadata ({exc})") from None
    if artifact.app != app:
        raise ArtifactError(f"{path}: built for app {artifact.app!r}, not {app!r}")
    return artifact


def write_meta(artifact: Artifact, **extra: object) -> None:
    """Write `<file>.meta.json`: what `load_artifact` and the build cache read back."""
    meta = artifact.path.with_name(artifact.path.name + ".meta.json")
    data = {**artifact.to_json(), "path": artifact.path.name, **extra}
    meta.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
