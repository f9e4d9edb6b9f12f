"""Build a recipe's artifacts, one builder per format, with a content-hash cache.

Every builder takes the recipe, the selected source entries, the release id
and the output folder, and returns an Artifact.  Unchanged inputs are not
rebuilt: an artifact whose metadata names the same release id (source tree
hash) and recipe hash is reused as is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from fleetdist.build.archive import write_tar_gz, write_zip
from fleetdist.build.artifact import Artifact, load_artifact, release_id, seal, write_meta
from fleetdist.build.tree import Entry, tree_hash, walk
from fleetdist.config.schema import Recipe
from fleetdist.errors import ArtifactError, ConfigError

Builder = Callable[[Recipe, list[Entry], str, Path], Artifact]


def _tar_gz(recipe: Recipe, entries: list[Entry], rid: str, out: Path) -> Artifact:
    path = out / f"{recipe.app}-{rid}.tar.gz"
    write_tar_gz(entries, path)
    return seal(path, app=recipe.app, version=recipe.version, rid=rid, fmt="tar.gz")


def _zip(recipe: Recipe, entries: list[Entry], rid: str, out: Path) -> Artifact:
    path = out / f"{recipe.app}-{rid}.zip"
    write_zip(entries, path)
    return seal(path, app=recipe.app, version=recipe.version, rid=rid, fmt="zip")


BUILDERS: dict[str, Builder] = {"tar.gz": _tar_gz, "zip": _zip}
DEPLOYABLE = ("tar.gz",)


def recipe_hash(recipe: Recipe) -> str:
    """A digest of the recipe file itself: a changed recipe means a rebuild."""
    return hashlib.sha256(Path(recipe.source_file).read_bytes()).hexdigest()


def build_recipe(recipe: Recipe, out: Path, formats: Sequence[str] = ()) -> list[Artifact]:
    """Build (or reuse) each requested format; unknown formats are a usage error."""
    chosen = list(formats or recipe.formats)
    for fmt in chosen:
        if fmt not in BUILDERS:
            raise ConfigError(f"--formats: unknown format {fmt!r} (known: {', '.join(BUILDERS)})")
    entries = walk(recipe.source, f"{recipe.source_file}: source.path")
    rid = release_id(recipe.version, tree_hash(entries))
    out.mkdir(parents=True, exist_ok=True)
    rhash = recipe_hash(recipe)
    artifacts = []
    for fmt in chosen:
        cached = _cached(out, recipe, rid, fmt, rhash)
        if cached is None:
            cached = BUILDERS[fmt](recipe, entries, rid, out)
            write_meta(cached, recipe_hash=rhash)
        artifacts.append(cached)
    return artifacts


def _cached(out: Path, recipe: Recipe, rid: str, fmt: str, rhash: str) -> Artifact | None:
    path = out / f"{recipe.app}-{rid}.{fmt}"
    meta = path.with_name(path.name + ".meta.json")
    try:
        if json.loads(meta.read_text()).get("recipe_hash") != rhash:
            return None
        artifact = load_artifact(path, app=recipe.app)
    except (OSError, ValueError, ArtifactError):
        return None
    return artifact if artifact.release_id == rid and artifact.format == fmt else None
