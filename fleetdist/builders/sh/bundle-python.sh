# shellcheck shell=dash
# bundle-python.sh DEST: copy the build machine's own CPython (binary,
# stdlib, the shared libraries it needs beyond glibc) under DEST, with
# $ORIGIN-relative rpaths, so a package built with `python: bundled` needs
# no python3 on the host.  Run by build.sh inside the build container.
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
        libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libutil.so*) continue ;;
    esac
    cp -L "$lib" "$dest/lib/"
done
# $ORIGIN is for the dynamic loader, not the shell: single quotes on purpose.
# shellcheck disable=SC2016
patchelf --set-rpath '$ORIGIN/../lib' "$dest/bin/python$ver"
# shellcheck disable=SC2016
for so in "$dest/lib/python$ver"/lib-dynload/*.so; do patchelf --set-rpath '$ORIGIN/../..' "$so"; done
# shellcheck disable=SC2016
for so in "$dest"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$so"; done
"$dest/bin/python3" -c 'import ssl, sqlite3, ctypes, venv; print("bundled", ssl.OPENSSL_VERSION)'
