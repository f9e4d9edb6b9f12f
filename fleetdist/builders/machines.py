"""The script a build machine's container runs: fleetdist's own, or the machine's template.

fleetdist's script is `sh/build.sh` (with `sh/items.sh`): real shell that
gets every value below as a quoted variable named in capitals (`PREFIX`,
`TESTS`, ...), assigned by `command.assign` before it.  A machine may replace
it with its own template (recipe `build.machines.<name>.script` or the
machines file).  Placeholders are `{{name}}`; each value is shell-quoted
when it is filled in, and a list becomes several quoted words, so a template
never quotes anything itself.  An unknown placeholder is a ConfigError.

Placeholders: app, version, prefix (the release directory being built),
python (system|bundled), python_version (with bundled: the CPython version
built from source and mounted as /fleetdist/python.tar, or nothing for a
copy of the machine's own), build_deps, requirement (the app's `name==version`,
or nothing), requirements (requirements files, container paths), tests (one
word per test command), formats (deb/rpm, or nothing), export_tree (yes|no),
owner (uid:gid to hand the outputs back to).  Mounted paths: /fleetdist/src
(the selected sources), /fleetdist/wheels (the wheelhouse), /fleetdist/pkg
(nfpm.yaml, maintainer scripts, helpers), /fleetdist/bin/nfpm, /fleetdist/out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fleetdist.errors import ConfigError
from fleetdist.release.command import assign, cmd, raw, script
from fleetdist.release.shlib import source

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
HERE = "fleetdist.builders"

# The shell is in sh/*.sh (readable and linted on its own); these texts are
# what a container gets, and part of every build's cache key.
DEFAULT_SCRIPT = "\n".join([source("items", HERE), source("build", HERE)])
# Makes a CPython tree self-contained (its libraries, $ORIGIN rpaths).
BUNDLE_LIBS = source("bundle-libs", HERE)
# Copies the build machine's own CPython under $1 (`python: bundled`).
BUNDLE_PYTHON = "\n".join([BUNDLE_LIBS, source("bundle-python", HERE)])
# Builds CPython `python_version` from Debian's source (builders/cpython.py).
BUILD_PYTHON = "\n".join([BUNDLE_LIBS, source("build-python", HERE)])
# Both interpreter scripts: part of every venv and package build's cache key.
PYTHON_SCRIPTS = "\n".join([BUNDLE_PYTHON, BUILD_PYTHON])


def render(template: str, values: Mapping[str, str | list[str]], where: str) -> str:
    """Fill `{{name}}` placeholders with shell-quoted values (lists: several words)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join(sorted(values))
            raise ConfigError(f"{where}: unknown placeholder {{{{{name}}}}} (known: {known})")
        value = values[name]
        return cmd(*value).text if isinstance(value, list) else cmd(value).text

    return PLACEHOLDER.sub(fill, template)


def build_script(template: str | None, values: Mapping[str, str | list[str]], where: str) -> str:
    """What a build container runs: the machine's own template filled in, or ours.

    Ours (sh/build.sh) gets every value as a quoted variable of the
    placeholder's name in capitals (`PREFIX`, `TESTS`, ...), never as text.
    """
    if template:
        return render(template, values, where)
    parts = [assign(name.upper(), _value(value)) for name, value in sorted(values.items())]
    return "#!/bin/sh\n" + script([*parts, raw(DEFAULT_SCRIPT)]).text + "\n"


def _value(value: str | list[str]) -> str:
    """A list as one item a line, `\\` and newline escaped (undone by sh/items.sh)."""
    if isinstance(value, str):
        return value
    return "\n".join(v.replace("\\", "\\\\").replace("\n", "\\n") for v in value)
