# shellcheck shell=dash
# bundle-python.sh DEST: copy the build machine's own CPython (binary,
# stdlib, the shared libraries it needs beyond glibc) under DEST, with
# $ORIGIN-relative rpaths, so a package built with `python: bundled` needs
# no python3 on the host.  Run by build.sh inside the build container;
# bundle-libs.sh is put before this file.
set -eu
dest=$1
ver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
mkdir -p "$dest/bin" "$dest/lib"
cp -L "/usr/bin/python$ver" "$dest/bin/python$ver"
ln -s "python$ver" "$dest/bin/python3"
cp -a "/usr/lib/python$ver" "$dest/lib/python$ver"
rm -rf "$dest/lib/python$ver/test" "$dest/lib/python$ver/config-$ver"*
bundle_libs "$dest" "$ver"
"$dest/bin/python3" -c 'import ssl, sqlite3, ctypes, venv; print("bundled", ssl.OPENSSL_VERSION)'
