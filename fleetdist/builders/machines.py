"""The default build script run in a build machine's container, and its template language.

A machine may replace the script with its own template (recipe `build.machines.<name>.script`
or the machines file).  Placeholders are `{{name}}`; each value is shell-quoted
when it is filled in, and a list becomes several quoted words, so a template
never quotes anything itself.  An unknown placeholder is a ConfigError.

Placeholders: app, version, prefix (the release directory being built),
python (system|bundled), build_deps, requirement (the app's `name==version`,
or nothing), requirements (requirements files, container paths), tests (one
word per test command), formats (deb/rpm, or nothing), export_tree (yes|no),
owner (uid:gid to hand the outputs back to).  Mounted paths: /fleetdist/src
(the selected sources), /fleetdist/wheels (the wheelhouse), /fleetdist/pkg
(nfpm.yaml, maintainer scripts, helpers), /fleetdist/bin/nfpm, /fleetdist/out.
"""

# Shell templates read better on one line than split across Python strings.
# ruff: noqa: E501

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from fleetdist.errors import ConfigError

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

DEFAULT_SCRIPT = r"""#!/bin/sh
# fleetdist's default build script (see fleetdist/builders/machines.py).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1
prefix={{prefix}}

set -- {{build_deps}}
if [ "$#" -gt 0 ]; then
  echo "== build deps: $*"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "$@"
fi

echo "== app source into $prefix"
mkdir -p "$prefix"
cp -a /fleetdist/src/. "$prefix/"

if [ {{python}} = bundled ]; then
  echo "== bundling this machine's CPython into $prefix/python"
  sh /fleetdist/pkg/bundle-python.sh "$prefix/python"
  python="$prefix/python/bin/python3"
  # Symlinks: the bundled binary finds its libraries through $ORIGIN of the real file.
  flags=--symlinks
else
  python=/usr/bin/python3
  # Copies: no absolute symlink in the bundle; stdlib still comes from the host's python3.
  flags=--copies
fi
echo "== venv at $prefix/venv ($("$python" --version))"
# The machine's own pip installs into the venv (`pip --python`), so the release
# carries no pip of its own; without one, the venv gets pip from ensurepip.
if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
  "$python" -m venv "$flags" --without-pip "$prefix/venv"
  pip() { /usr/bin/python3 -m pip --python "$prefix/venv/bin/python" "$@"; }
else
  "$python" -m venv "$flags" "$prefix/venv"
  pip() { "$prefix/venv/bin/python" -m pip "$@"; }
fi

set -- {{requirement}}
for r in {{requirements}}; do set -- "$@" -r "$r"; done
if [ "$#" -gt 0 ]; then
  # The wheelhouse holds everything: no index, so the build is offline and repeatable.
  pip install --no-index --find-links /fleetdist/wheels "$@"
fi
"$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))' \
  > "$prefix/.fleetdist-abi"

echo "== app tests in $prefix"
cd "$prefix"
for t in {{tests}}; do
  echo "\$ $t"
  PATH="$prefix/venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1 sh -c "$t"
done
cd /

set -- {{formats}}
if [ "$#" -gt 0 ]; then
  # The marker makes the installed release look staged to fleetdist's probe.
  printf '%s package\n' {{version}} > "$prefix/.fleetdist-release"
  export FLEETDIST_ARCH="$(dpkg --print-architecture)"
  export FLEETDIST_PYTHON_DEP="$(/usr/bin/python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')"
  for fmt in "$@"; do
    echo "== nfpm package -p $fmt"
    /fleetdist/bin/nfpm package -f /fleetdist/pkg/nfpm.yaml -p "$fmt" -t "/fleetdist/out/"
  done
fi
if [ {{export_tree}} = yes ]; then
  mkdir -p /fleetdist/out/tree
  cp -a "$prefix/." /fleetdist/out/tree/
fi
chown -R {{owner}} /fleetdist/out
echo "== done"
"""

# Copy the build machine's own CPython (binary, stdlib, non-glibc shared
# libraries) under $1, with $ORIGIN rpaths, so the package needs no python3.
BUNDLE_PYTHON = r"""#!/bin/sh
set -eu
dest=$1
ver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$dest/bin" "$dest/lib"
cp -L "/usr/bin/python$ver" "$dest/bin/python$ver"
ln -s "python$ver" "$dest/bin/python3"
cp -a "/usr/lib/python$ver" "$dest/lib/python$ver"
rm -rf "$dest/lib/python$ver/test" "$dest/lib/python$ver/config-$ver"*
for f in "$dest/bin/python$ver" "$dest/lib/python$ver"/lib-dynload/*.so; do ldd "$f"; done \
  | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u | while read -r lib; do
    case "${lib##*/}" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libutil.so*) continue ;;
    esac
    cp -L "$lib" "$dest/lib/"
  done
patchelf --set-rpath '$ORIGIN/../lib' "$dest/bin/python$ver"
for so in "$dest/lib/python$ver"/lib-dynload/*.so; do patchelf --set-rpath '$ORIGIN/../..' "$so"; done
for so in "$dest"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$so"; done
"$dest/bin/python3" -c 'import ssl, sqlite3, ctypes, venv; print("bundled", ssl.OPENSSL_VERSION)'
"""


def render(template: str, values: Mapping[str, str | list[str]], where: str) -> str:
    """Fill `{{name}}` placeholders with shell-quoted values (lists: several words)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            known = ", ".join(sorted(values))
            raise ConfigError(f"{where}: unknown placeholder {{{{{name}}}}} (known: {known})")
        value = values[name]
        if isinstance(value, list):
            return " ".join(shlex.quote(v) for v in value)
        return shlex.quote(value)

    return PLACEHOLDER.sub(fill, template)
