# shellcheck shell=dash
# bundle_libs DEST VER: make the CPython under DEST self-contained.  Copies
# the shared libraries its binary and extension modules need beyond glibc
# (libssl, libsqlite3, libffi, ...) into DEST/lib and gives every ELF file
# an $ORIGIN-relative rpath, so the interpreter runs from wherever DEST ends
# up, on a host with no python3 and none of those -dev or runtime packages.
# Used by bundle-python.sh (the machine's own interpreter) and
# build-python.sh (a version built from source).
bundle_libs() {
    bl_dest=$1
    bl_ver=$2
    for f in "$bl_dest/bin/python$bl_ver" "$bl_dest/lib/python$bl_ver"/lib-dynload/*.so; do
        ldd "$f"
    done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u | while read -r lib; do
        case "${lib##*/}" in
            libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libutil.so*) continue ;;
        esac
        cp -L "$lib" "$bl_dest/lib/"
    done
    # $ORIGIN is for the dynamic loader, not the shell: single quotes on purpose.
    # shellcheck disable=SC2016
    patchelf --set-rpath '$ORIGIN/../lib' "$bl_dest/bin/python$bl_ver"
    for so in "$bl_dest/lib/python$bl_ver"/lib-dynload/*.so; do
        # shellcheck disable=SC2016
        patchelf --set-rpath '$ORIGIN/../..' "$so"
    done
    for so in "$bl_dest"/lib/*.so*; do
        [ -e "$so" ] || continue
        # shellcheck disable=SC2016
        patchelf --set-rpath '$ORIGIN' "$so"
    done
}
