"""Which artifact a deploy ships, and what each host is sent for it.

`api.deploy` builds (or loads) the artifact and streams its checked payload;
`api.plan` asks the same questions without building or writing anything.
"""

from __future__ import annotations

import dataclasses

from fleetdist.errors import ConfigError
from fleetdist.orchestrate.runner import Uploads
from fleetdist.orchestrate.work import HostJob
from fleetdist.release import steps
from fleetdist.session import DeployOptions, Loaded, Selection, check_artifact_fits, resolve_version
from fleetdist.shipping import importing
from fleetdist.shipping.artifact import DEPLOYABLE, Artifact
from fleetdist.shipping.payload import Payload, preview

# The payload digest a dry run shows for an artifact `build` has not made yet.
UNBUILT = "<sha256 known once built>"


def artifact_for(sel: Selection, loaded: Loaded, opts: DeployOptions) -> Artifact:
    """The artifact a deploy ships: `--artifact` (built by fleetdist or not), else the
    tar.gz `build` makes now; checked to be deployable to every selected host."""
    path = opts.artifact
    if path is not None:
        app = loaded.recipe.app
        artifact = importing.load(path, app=app, release=opts.release, version=opts.version)
    elif opts.release or opts.version:
        raise ConfigError("--release/--version: only with --artifact PATH")
    else:
        from fleetdist.builders.formats import build_recipe

        recipe = resolve_version(loaded.recipe, loaded.env)
        artifact = build_recipe(recipe, sel.project.dist, ("tar.gz",))[0]
    if artifact.format not in DEPLOYABLE:
        raise ConfigError(f"--artifact: {artifact.format} artifacts cannot be deployed yet")
    check_artifact_fits(loaded, artifact, sel.env)
    return artifact


def uploads(artifact: Artifact, payload: Payload) -> Uploads:
    """What each host is sent: today the one checked payload, whole, to every host."""
    note = ", ".join(filter(None, (str(artifact.path), payload.note)))

    def upload(job: HostJob) -> steps.Upload:
        return steps.Upload.of(
            job.ctx,
            payload.sha256,
            payload.format,
            artifact.sha256,
            source=payload.path,
            note=note,
            bundle=artifact.format == "venv",  # shebangs and interpreter must fit each host
        )

    return upload


def planned(sel: Selection, loaded: Loaded, opts: DeployOptions) -> tuple[Artifact, Payload]:
    """The artifact a deploy would ship and its payload, checked like a deploy's, with
    nothing written.  Without --artifact that is the tar.gz `build` makes; if it is not
    built yet, the plan says so and shows its payload's digest as unknown."""
    if opts.artifact is None and not (opts.release or opts.version):
        from fleetdist.builders.formats import planned_archive

        recipe = resolve_version(loaded.recipe, loaded.env)
        rid, path = planned_archive(recipe, sel.project.dist)
        if not path.is_file():
            unbuilt = Artifact(path, recipe.app, recipe.version, rid, "tar.gz", UNBUILT, 0)
            note = "not built yet: the deploy builds it first"
            return unbuilt, Payload(path, UNBUILT, "tar.gz", note)
        opts = dataclasses.replace(opts, artifact=path)
    artifact = artifact_for(sel, loaded, opts)
    return artifact, preview(artifact, sel.project.state / "payloads")
