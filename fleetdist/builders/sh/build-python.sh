# shellcheck shell=dash
# Build CPython PYTHON_VERSION from Debian's source package of suite SUITE
# with this build machine's toolchain, and leave it as /fleetdist/out/python.tar
# (a relocatable tree: bin/python3, lib/python3.X, the shared libraries it
# needs).  Run by `sh` in a clean container of the build machine (see
# fleetdist/builders/cpython.py, which caches the tar per machine and
# version); fleetdist puts `set -eu`, PYTHON_VERSION, SUITE and OWNER (uid:gid
# to hand the output back to) before this file, and bundle-libs.sh.
#
# Debian's `.orig` tarball is upstream's release, fetched through apt from
# the mirror this image's own apt sources name (never a host of our own), so
# apt checks it against the suite's signed Sources index.  No PGO, LTO or
# test suite: the first build on a machine pays minutes, not an hour.

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
dest=/opt/fleetdist-python  # any path: the tree is moved under the release later
work=/tmp/cpython

say() { echo "== $*"; }

command -v apt-get > /dev/null || {
    echo "build-python: this build machine has no apt-get (a Debian-based image is needed)" >&2
    exit 1
}

# The first non-security mirror of the image's apt sources: one-line
# sources.list entries, then deb822 `URIs:` fields.
mirror=$(sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2> /dev/null | grep -v security | head -n 1 || true)
if [ -z "$mirror" ]; then
    mirror=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
        /etc/apt/sources.list.d/*.sources 2> /dev/null || true)
fi
[ -n "$mirror" ] || { echo "build-python: no Debian mirror in this image's apt sources" >&2; exit 1; }

say "Debian source of python$PYTHON_VERSION from $SUITE ($mirror)"
# Only the source index of SUITE is added.  Its Release file is still
# signature-checked; check-valid-until=no because a mirror snapshot older
# than this clock would otherwise refuse sid's short-lived Release file.
printf 'deb-src [check-valid-until=no] %s %s main\n' "$mirror" "$SUITE" \
    > /etc/apt/sources.list.d/fleetdist-python-src.list
apt-get update -q
apt-get install -y -q --no-install-recommends build-essential pkg-config xz-utils patchelf \
    libssl-dev libsqlite3-dev zlib1g-dev libbz2-dev liblzma-dev libffi-dev \
    libreadline-dev libncurses-dev uuid-dev
mkdir -p "$work"
cd "$work" || exit 1
apt-get source -q --download-only "python$PYTHON_VERSION/$SUITE"
set -- python"$PYTHON_VERSION"_*.orig.tar.gz python"$PYTHON_VERSION"_*.orig.tar.xz
for orig in "$@"; do [ -f "$orig" ] && break; done
[ -f "$orig" ] || { echo "build-python: apt fetched no .orig tarball of python$PYTHON_VERSION" >&2; exit 1; }
tar -xf "$orig"
cd Python-"$PYTHON_VERSION".*/ || exit 1

say "configure and make $(basename "$PWD") (make -j2, no PGO/LTO)"
# Static libpython (no --enable-shared): one binary whose rpath bundle_libs
# sets.  No ensurepip here: venv installs pip into the app's venv itself.
./configure -q --prefix="$dest" --without-ensurepip --disable-test-modules
make -s -j2
# SOURCE_DATE_EPOCH makes compileall write checked-hash .pyc files: they stay
# valid whatever mtime the package gives the .py files.
make -s install > /dev/null

say "trimming and bundling its libraries"
lib="$dest/lib/python$PYTHON_VERSION"
rm -rf "$lib/test" "$lib/idlelib" "$lib/turtledemo" "$lib/tkinter" "$dest/share"
# The static libpython (70 MB) is only for embedding; extensions do not link it.
rm -f "$dest"/lib/libpython*.a "$lib"/config-"$PYTHON_VERSION"*/libpython*.a
find "$lib" -name '*.opt-[12].pyc' -delete
# Keep only the interpreter: idle/pydoc/2to3 scripts carry absolute shebangs.
find "$dest/bin" -mindepth 1 ! -name "python$PYTHON_VERSION" -exec rm -f {} +
ln -s "python$PYTHON_VERSION" "$dest/bin/python3"
strip --strip-unneeded "$dest/bin/python$PYTHON_VERSION" "$lib"/lib-dynload/*.so
bundle_libs "$dest" "$PYTHON_VERSION"

# Proven relocatable: run from another directory, with every module it promises.
mv "$dest" "$work/moved"
"$work/moved/bin/python3" -c '
import bz2, ctypes, curses, lzma, readline, sqlite3, ssl, sys, uuid, venv, zlib
assert sys.prefix.endswith("/moved"), sys.prefix
print("built", sys.version.split()[0], ssl.OPENSSL_VERSION, "sqlite", sqlite3.sqlite_version)'
tar --sort=name --mtime="@${SOURCE_DATE_EPOCH:-315532800}" --owner=0 --group=0 --numeric-owner \
    -C "$work/moved" -cf /fleetdist/out/python.tar .
chown "$OWNER" /fleetdist/out/python.tar
say "done"
