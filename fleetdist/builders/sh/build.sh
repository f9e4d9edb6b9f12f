# shellcheck shell=dash
# fleetdist's default build script, run by `sh` in a clean container of the
# build machine (see fleetdist/builders/machines.py).  fleetdist puts
# `set -eu` and the build's values before it, each assigned as a quoted
# variable: PREFIX (the release directory being built), VERSION, PYTHON
# (system|bundled), PYTHON_VERSION (with bundled: a CPython built from
# source, mounted as /fleetdist/python.tar; empty: copy this machine's own
# with bundle-python.sh), EXPORT_TREE (yes|no), OWNER (uid:gid to hand the outputs
# back to), and the lists BUILD_DEPS, REQUIREMENT (the app's `name==version`
# or nothing), REQUIREMENTS (requirements files, container paths), TESTS and
# FORMATS (deb/rpm, or nothing).
#
# Each list becomes the positional parameters through `item` (items.sh, put
# before this file), in a loop that reads a here-document: not a pipe, as
# the loop must run in this shell.

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1

set --
while IFS= read -r line; do if item "$line"; then set -- "$@" "$IT"; fi; done << LIST
$BUILD_DEPS
LIST
if [ "$#" -gt 0 ]; then
    echo "== build deps: $*"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "$@"
fi

echo "== app source into $PREFIX"
mkdir -p "$PREFIX"
cp -a /fleetdist/src/. "$PREFIX/"

if [ "$PYTHON" = bundled ] && [ -n "$PYTHON_VERSION" ]; then
    echo "== CPython $PYTHON_VERSION (built from Debian's source, cached) into $PREFIX/python"
    mkdir -p "$PREFIX/python"
    tar -xf /fleetdist/python.tar -C "$PREFIX/python"
    py="$PREFIX/python/bin/python3"
    flags=--symlinks
elif [ "$PYTHON" = bundled ]; then
    echo "== bundling this machine's CPython into $PREFIX/python"
    sh /fleetdist/pkg/bundle-python.sh "$PREFIX/python"
    py="$PREFIX/python/bin/python3"
    # Symlinks: the bundled binary finds its libraries through $ORIGIN of the real file.
    flags=--symlinks
else
    py=/usr/bin/python3
    # Copies: no absolute symlink in the bundle; stdlib still comes from the host's python3.
    flags=--copies
fi
echo "== venv at $PREFIX/venv ($("$py" --version))"
# The machine's own pip installs into the venv (`pip --python`), so the release
# carries no pip of its own; without one, or for a CPython of another version
# (which that pip may not support), the venv gets pip from ensurepip.
if [ -z "$PYTHON_VERSION" ] && /usr/bin/python3 -m pip --version > /dev/null 2>&1; then
    "$py" -m venv "$flags" --without-pip "$PREFIX/venv"
    pip() { /usr/bin/python3 -m pip --python "$PREFIX/venv/bin/python" "$@"; }
else
    "$py" -m venv "$flags" "$PREFIX/venv"
    pip() { "$PREFIX/venv/bin/python" -m pip "$@"; }
fi

set --
while IFS= read -r line; do if item "$line"; then set -- "$@" "$IT"; fi; done << LIST
$REQUIREMENT
LIST
while IFS= read -r line; do if item "$line"; then set -- "$@" -r "$IT"; fi; done << LIST
$REQUIREMENTS
LIST
if [ "$#" -gt 0 ]; then
    # The wheelhouse holds everything: no index, so the build is offline and repeatable.
    pip install --no-index --find-links /fleetdist/wheels "$@"
fi
"$PREFIX/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("SOABI"))' \
    > "$PREFIX/.fleetdist-abi"

echo "== app tests in $PREFIX"
set --
while IFS= read -r line; do if item "$line"; then set -- "$@" "$IT"; fi; done << LIST
$TESTS
LIST
cd "$PREFIX" || exit
for t in "$@"; do
    echo "\$ $t"
    PATH="$PREFIX/venv/bin:$PATH" PYTHONDONTWRITEBYTECODE=1 sh -c "$t"
done
cd /

set --
while IFS= read -r line; do if item "$line"; then set -- "$@" "$IT"; fi; done << LIST
$FORMATS
LIST
if [ "$#" -gt 0 ]; then
    # The marker makes the installed release look staged to fleetdist's probe.
    printf '%s package\n' "$VERSION" > "$PREFIX/.fleetdist-release"
    # nfpm keeps a tree's mtimes: date every file SOURCE_DATE_EPOCH (container_build
    # always sets it), so the same inputs give the same package bytes.
    find "$PREFIX" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    FLEETDIST_ARCH=$(dpkg --print-architecture)
    FLEETDIST_PYTHON_DEP=$(/usr/bin/python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
    export FLEETDIST_ARCH FLEETDIST_PYTHON_DEP
    for fmt in "$@"; do
        echo "== nfpm package -p $fmt"
        /fleetdist/bin/nfpm package -f /fleetdist/pkg/nfpm.yaml -p "$fmt" -t "/fleetdist/out/"
    done
fi
if [ "$EXPORT_TREE" = yes ]; then
    mkdir -p /fleetdist/out/tree
    cp -a "$PREFIX/." /fleetdist/out/tree/
fi
chown -R "$OWNER" /fleetdist/out
echo "== done"
