# shellcheck shell=dash
# Flipping `current`.  A flip is recorded in "$PENDING" before it happens and
# confirmed (the record removed) only after the after_activate hooks and the
# healthcheck passed; `recover` undoes a flip whose script died in between.
# The critical part runs detached from the controller (see `activate`), so a
# dropped connection cannot stop a revert half way.  Needs ID (the target),
# ACT (deploy or rollback), UNTESTED_OK (1 to allow an untested target) and
# the hook functions fleetdist renders: hooks_before, hooks_after, healthcheck.

# remember ID: record ID (or nothing) as the release `current` last replaced.
remember() {
    if [ -n "$1" ]; then put "$PREVF" "$1"; else rm -f "$PREVF"; fi
}

# relink TARGET: point `current` back at TARGET, a link that was not a release.
relink() {
    ln -sfn "$1" "$R/.current.tmp"
    mv -T "$R/.current.tmp" "$CUR"
}

# flip ID: point `current` at releases/ID by one rename(2), or remove it for "".
flip() {
    if [ -z "$1" ]; then
        rm -f "$CUR"
        return 0
    fi
    ln -sfn "releases/$1" "$R/.current.tmp"
    mv -T "$R/.current.tmp" "$CUR"
}

# recover: a pending flip whose script is gone (we hold the mutex, so it is
# not running) never passed its checks: put `current` and `previous` back,
# restart the old release, and say so in the ledger.
recover() {
    [ -f "$PENDING" ] || return 0
    p_run="" p_act="" p_from="" p_to="" p_prev=""
    read -r p_run p_act p_from p_to p_prev < "$PENDING" || true
    [ "$p_from" != - ] || p_from=""
    [ "$p_prev" != - ] || p_prev=""
    is_id "$p_from" || p_from=""
    is_id "$p_prev" || p_prev=""
    current_id "$p_to"
    if is_id "$p_to" && [ "$CID" = "$p_to" ]; then
        echo "recovering: the $p_act of run $p_run left $p_to live without confirming it; back to ${p_from:-nothing}" >&2
        say "@@recovered $p_to ${p_from:--}"
        p_link=""
        if [ -z "$p_from" ] && [ -f "$PENDING.link" ]; then read -r p_link < "$PENDING.link" || true; fi
        if [ -n "$p_link" ]; then relink "$p_link"; else flip "$p_from"; fi
        remember "$p_prev"
        if [ -n "$p_from" ]; then (ID=$p_from OLD=$p_to ACT=revert && hooks_after) || true; fi
        rm -f "$PENDING" "$PENDING.link"
        ledger "$LREC_A" "$LREC_B" "$LREC_C" "$p_to" "$p_from"
    else
        # The flip never happened or was already undone; `previous` may have moved.
        remember "$p_prev"
        rm -f "$PENDING" "$PENDING.link"
    fi
}

# revert: put back what the flip replaced, restart it, record it, stop.
revert() {
    if [ -n "$OLD" ] || [ -z "$OLDLINK" ]; then flip "$OLD"; else relink "$OLDLINK"; fi
    remember "$PREV"
    if [ -n "$OLD" ]; then (n=$OLD && OLD=$ID && ID=$n && ACT=revert && hooks_after) || true; fi
    rm -f "$PENDING" "$PENDING.link"
    ledger "$LREV_A" "$LREV_B" "$LREV_C" "$OLD" "$ID"
    exit "$EX_REVERTED"
}

# switch: the activation itself, from "$OLD" to "$ID", then prune.
switch() {
    [ -f "$REL/$ID/$MARKER" ] || die "release '$ID' is not on this host" "$EX_NOT_STAGED"
    if [ -e "$CUR" ] && [ ! -h "$CUR" ]; then
        die "$CUR is not a symlink: fleetdist will not replace it (move it away first)"
    fi
    if [ ! -f "$TESTED/$ID" ] && [ "$UNTESTED_OK" != 1 ]; then
        die "release '$ID' has not passed its in-place tests on this host (--allow-untested to activate it anyway)" "$EX_NOT_TESTED"
    fi
    read_previous
    OLDLINK=""
    if [ -z "$OLD" ] && [ -h "$CUR" ]; then OLDLINK=$(readlink "$CUR" || true); fi
    hooks_before || die "before_activate hook failed"
    put "$PENDING" "$RUN $ACT ${OLD:--} $ID ${PREV:--}"
    if [ -n "$OLDLINK" ]; then put "$PENDING.link" "$OLDLINK"; fi
    # `previous` is written before the flip: a kill between the two is undone
    # by `recover`, which restores it from the pending record.
    if [ "$OLD" != "$ID" ]; then remember "$OLD"; fi
    flip "$ID" || {
        echo "could not point $CUR at releases/$ID; reverted to ${OLD:-nothing}" >&2
        revert
    }
    hooks_after || {
        echo "after_activate hook failed; reverted to ${OLD:-nothing}" >&2
        revert
    }
    healthcheck || {
        echo "healthcheck failed; reverted to ${OLD:-nothing}" >&2
        revert
    }
    rm -f "$PENDING" "$PENDING.link"
    ledger "$LOK_A" "$LOK_B" "$LOK_C" "$OLD" "$ID"
    for x in $PRUNE; do
        # The flip is confirmed: a prune that fails is a warning, never a failed deploy.
        drop "$x" || printf 'warning: could not prune %s\n' "$x" >&2
    done
}

# activate: run `switch` detached from the controller (see `detached`).
activate() {
    detached switch
    return "$RC"
}

# drop ID: delete a release; one an OS package installed is purged through
# dpkg (deleting a dpkg-owned directory would leave dpkg believing it is
# still installed).  Never `current`, the release it replaced ("$OLD"), or,
# when `current` did not move, the recorded previous one: a second guard
# behind the controller's prune_candidates.
drop() {
    is_id "$1" || return 1
    if [ "$CUR" -ef "$REL/$1" ] || [ "$1" = "$OLD" ]; then return 1; fi
    if [ "$OLD" = "$ID" ] && [ "$1" = "$PREV" ]; then return 1; fi
    pkg=""
    if command -v dpkg > /dev/null 2>&1; then
        pkg=$(dpkg -S "$REL/$1/$MARKER" 2> /dev/null | cut -d: -f1 || true)
    fi
    if [ -n "$pkg" ]; then
        if [ "$(id -u)" -eq 0 ]; then dpkg --purge "$pkg"; else sudo -n dpkg --purge "$pkg"; fi > /dev/null 3>&- 9>&- || return 1
    fi
    rm -f "$TESTED/$1"
    rm -rf -- "${REL:?}/$1"
}
