"""Archives fleetdist did not build (CI's own tarballs): a release id, and metadata once.

A tar that `fleetdist build` made has a `<file>.meta.json` naming its
release id.  One made elsewhere has none, so its id comes from the operator:
`--release ID` as given, or `--version V`, which gives `V-<10 hex of the
file's sha256>` (the same bytes, the same id, so a second deploy is a
no-op).  Either way the archive is then shipped like any other: parsed once,
every member checked, and only fleetdist's canonical tar reaches a host.

`fleetdist import PATH --version V` checks the archive the same way and
writes the metadata beside it once, so later deploys need no flag; an
imported archive whose bytes changed afterwards is refused rather than
deployed under the old id.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fleetdist.config.names import check_release_id, check_version
from fleetdist.errors import ArtifactError, ConfigError
from fleetdist.shipping import compression
from fleetdist.shipping.artifact import Artifact, file_sha256, load_artifact, release_id, write_meta

# `compression.compression` name -> the artifact format of a tar compressed that way.
FORMATS = {"gzip": "tar.gz", "bzip2": "tar.bz2", "xz": "tar.xz", "": "tar"}


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def load(path: Path, *, app: str, release: str | None, version: str | None) -> Artifact:
    """What `deploy --artifact PATH` deploys: built (with metadata) or foreign (with a flag)."""
    if meta_path(path).exists():
        if release or version:
            raise ConfigError(
                f"--release/--version: {path} already has {meta_path(path).name}, which names "
                "its release; these flags are for archives fleetdist did not build"
            )
        return _checked(load_artifact(path, app=app))
    if not release and not version:
        raise ConfigError(
            f"--artifact: {path} has no {meta_path(path).name} (fleetdist did not build it): "
            "name its release with --release ID, or give --version V (id V-<content hash>), "
            "or run `fleetdist import` once"
        )
    return foreign(path, app=app, release=release, version=version)


def foreign(path: Path, *, app: str, release: str | None, version: str | None) -> Artifact:
    """Describe a tar fleetdist did not build; its format comes from its bytes, not its name."""
    if version is not None:
        check_version(version, "--version")
    if release is not None:
        check_release_id(release, "--release")
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact")
    with path.open("rb") as fh:
        fmt = FORMATS[compression.compression(fh.read(6))]
    sha = file_sha256(path)
    rid = release or release_id(version or "", sha)
    return Artifact(path, app, version or rid, rid, fmt, sha, path.stat().st_size)


def record(artifact: Artifact) -> None:
    """Write the metadata of a checked foreign archive; never over an existing one."""
    meta = meta_path(artifact.path)
    if meta.exists():
        raise ConfigError(f"import: {meta} exists already (remove it to import again)")
    imported = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_meta(artifact, imported_at=imported, machine="imported")


def _checked(artifact: Artifact) -> Artifact:
    """An imported archive must still be the bytes it was imported as."""
    data = json.loads(meta_path(artifact.path).read_text(encoding="utf-8"))
    if data.get("machine") == "imported" and data.get("sha256") != artifact.sha256:
        raise ArtifactError(
            f"{artifact.path}: its bytes changed since `fleetdist import` named it "
            f"{artifact.release_id}; import it again under a new id"
        )
    return artifact
