# shellcheck shell=dash
# Turning an upload into a staged, tested release.  Needs ID (the release),
# A (where the upload lands), SHA (its sha256), ASHA (the artifact's own
# sha256, recorded in the marker) and RUN.

# staged: true if "$REL/$ID" was staged from this very artifact (its marker
# names "$ASHA"), so it need not be sent again.  Another artifact with the
# same release id (another format, a changed build step) is staged anew.  A
# .deb's marker comes from the package itself, so any marker will do there.
staged() {
    [ -f "$REL/$ID/$MARKER" ] || return 1
    if [ "$FMT" = deb ]; then return 0; fi
    m_id="" m_sha=""
    read -r m_id m_sha < "$REL/$ID/$MARKER" || true
    [ "$m_id $m_sha" = "$ID $ASHA" ]
}

# clean_scratch: drop what dead scripts left in incoming/ and staging/.  We
# hold the mutex, so no script that could still use them is running.
clean_scratch() {
    rm -rf "$STAGING" "$INCOMING"
    mkdir -p "$STAGING" "$INCOMING" "$TESTED"
}

# receive: read the upload from stdin into "$A" and check its sha256
# (OpenSSL uses the CPU's SHA extensions: twice as fast as coreutils).
receive() {
    if ! cat > "$A"; then
        rm -f "$A"
        die "upload failed: $(df -Pk "$R" | awk 'NR==2 {print $4}') KiB free on $R"
    fi
    got=""
    if command -v openssl > /dev/null 2>&1; then got=$(openssl dgst -sha256 -r < "$A" 2> /dev/null) || got=""; fi
    if [ -z "$got" ]; then got=$(sha256sum < "$A"); fi
    got=${got%% *}
    if [ "$got" != "$SHA" ]; then
        rm -f "$A"
        die "sha256 mismatch: uploaded $got, expected $SHA"
    fi
}

# unpack_tar [z]: unpack the upload (fleetdist's own canonical tar, whose
# sha256 receive checked) into a staging directory of this run, mark it, and
# rename it into releases/.  The marker is created with noclobber, so it
# never follows a link; ownership and modes come from the canonical tar, not
# from whoever runs this.
unpack_tar() {
    S="$STAGING/$ID.$RUN"
    D="$REL/$ID"
    mkdir "$S"
    if ! tar "-x${1:-}f" "$A" -C "$S" --no-same-owner --no-same-permissions; then
        rm -rf "$S" "$A"
        die "unpack failed (disk full?): $(df -h "$R" | tail -1)"
    fi
    if [ -e "$S/$MARKER" ] || [ -h "$S/$MARKER" ]; then
        rm -rf "$S" "$A"
        die "the artifact holds $MARKER, a name reserved for fleetdist"
    fi
    (set -C && printf '%s %s\n' "$ID" "$ASHA" > "$S/$MARKER")
    rm -f "$TESTED/$ID"
    if [ -e "$D" ] || [ -h "$D" ]; then rm -rf "$D"; fi
    mv -T "$S" "$D"
    rm -f "$A"
}

# install_deb: apt-get install the upload and check it installed this release.
install_deb() {
    command -v apt-get > /dev/null 2>&1 || die "no apt-get here: .deb artifacts need a Debian-family host"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
    log="$FD/apt.log"
    rm -f "$TESTED/$ID"
    was=""
    if [ -h "$CUR" ]; then was=$(readlink "$CUR"); fi
    read_previous
    was_prev=$PREV
    # $SUDO is empty or "sudo -n": split on purpose.  fd 9 (the mutex) is not
    # passed on, so a service the package starts cannot hold the lease.
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$A" > "$log" 2>&1 3>&- 9>&- < /dev/null; then
        tail -n 5 "$log" >&2
        die "apt-get install failed (full log: $log)"
    fi
    now=""
    if [ -h "$CUR" ]; then now=$(readlink "$CUR"); fi
    if [ "$now" != "$was" ]; then
        # A package built with flip_current: postinst went live before its tests.
        if [ -n "$was" ]; then relink "$was"; else rm -f "$CUR"; fi
        remember "$was_prev"
        die "the package's own postinst moved $CUR before its tests ran (built with flip_current: postinst): put back; deploy packages built with flip_current: fleetdist"
    fi
    [ -f "$REL/$ID/$MARKER" ] || die "the package did not install $REL/$ID: packages install under /opt/<app>, so deploy_root must be that"
    rm -f "$A"
}

# bundle_check: fail, listing every problem, unless the venv bundle's
# interpreters fit this host (shebangs exist, same Python ABI as the build).
bundle_check() {
    D="$REL/$ID"
    bad=0
    for f in "$D"/venv/bin/*; do
        if [ -L "$f" ] || [ ! -f "$f" ] || [ "$(head -c 2 "$f")" != "#!" ]; then continue; fi
        i=$(head -n 1 "$f" | cut -c3- | sed "s/^[[:space:]]*//; s/[[:space:]].*//")
        if [ ! -x "$i" ]; then
            echo "shebang of ${f#"$D"/} names $i, not on this host (bundle built for another root?)" >&2
            bad=1
        fi
    done
    home=$(sed -n "s/^home *= *//p" "$D/venv/pyvenv.cfg" 2> /dev/null || true)
    want=$(cat "$D/$ABI_FILE" 2> /dev/null || echo unknown)
    if [ ! -x "$home/python3" ]; then
        echo "venv interpreter $home/python3 is missing on this host" >&2
        bad=1
    else
        got=$("$home/python3" -c "import sysconfig; print(sysconfig.get_config_var('SOABI'))" 2> /dev/null 3>&- 9>&- < /dev/null || echo unknown)
        if [ "$got" != "$want" ]; then
            echo "python ABI mismatch: bundle built for $want, host $home/python3 is $got" >&2
            bad=1
        fi
    fi
    # The bundle's own program: neither the protocol channel, nor the mutex, nor stdin.
    "$D/venv/bin/python" -c "import sys" 3>&- 9>&- < /dev/null || {
        echo "venv/bin/python does not start here" >&2
        bad=1
    }
    if [ "$bad" -ne 0 ]; then exit 1; fi
}

# share_dir PATH: make PATH in the release a link to "$SHARED/PATH", a
# directory kept across releases (whatever the release shipped there gives
# way).  Before the tests, on every prepare: the links are part of the
# release the tests see.  PATH passed fleetdist's grammar (relative, no ..).
share_dir() {
    mkdir -p "$SHARED/$1"
    share_link "$1"
}

# share_file PATH: the same for a file, created empty the first time.
share_file() {
    case $1 in */*) mkdir -p "$SHARED/${1%/*}" ;; *) mkdir -p "$SHARED" ;; esac
    if [ ! -e "$SHARED/$1" ]; then : > "$SHARED/$1"; fi
    share_link "$1"
}

share_link() {
    t="$REL/$ID/$1"
    case $1 in */*) mkdir -p "${t%/*}" ;; esac
    inside "${t%/*}" || die "shared path $1: its folder in the release leads out of it (a link in the artifact?)"
    rm -rf -- "$t"
    ln -s "$SHARED/$1" "$t"
}

# inside DIR: true if DIR, links resolved, is the release directory or below it.
inside() {
    real=$(cd -P -- "$1" && pwd -P) || return 1
    top=$(cd -P -- "$REL/$ID" && pwd -P) || return 1
    case $real/ in "$top"/*) return 0 ;; esac
    return 1
}

# test_failed MESSAGE: a test failed: no tested mark may stay (the test itself
# runs as this user and could have written one), then stop.
test_failed() {
    rm -f "$TESTED/$ID"
    die "$1"
}

# mark_tested: record that the release passed its tests here (read by activate).
mark_tested() {
    put "$TESTED/$ID" "$ASHA $RUN"
}
