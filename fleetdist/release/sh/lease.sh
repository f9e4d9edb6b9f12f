# shellcheck shell=dash
# The per-app lease.  Two layers:
#  - the mutex: every fleetdist script holds flock(1) on "$MUTEX" (fd 9) for
#    its whole life, so scripts on one app root never overlap, and a script
#    whose controller died keeps it until it has finished (or reverted);
#  - the lease record "$LOCK/" (run, holder, expires): which rollout owns the
#    app between its scripts.  It is read and replaced only under the mutex,
#    and written complete under a temporary name, then renamed into place.
# Needs RUN, HOLDER, LEASE (seconds), WAIT (seconds) and TAKEOVER (a run id
# the controller proved dead, or "").

# mutex_take: hold the mutex, waiting until $DEADLINE at most.  A busy mutex
# under another run's lease means that run's script is working here: give up
# at the deadline.  Otherwise it is a contender glancing at the lease, or the
# last script of our own run finishing: wait for it a little even past the
# deadline (flock -w wakes as soon as it is free).
mutex_take() {
    exec 9>> "$MUTEX"
    flock -n 9 && return 0
    lease_holder
    w=$((DEADLINE - $(date +%s)))
    if [ ! -d "$LOCK" ] || [ "$HELD_RUN" = "$RUN" ]; then
        if [ "$w" -lt 10 ]; then w=10; fi
    fi
    if [ "$w" -le 0 ] || ! flock -w "$w" 9; then
        lease_holder
        die "locked by $HELD_BY (a fleetdist script is still running here)" "$EX_LOCKED"
    fi
}

# lease_holder: set HELD_RUN, HELD_BY and HELD_EXP from the lease record.
lease_holder() {
    HELD_RUN="" HELD_BY="unknown" HELD_EXP=""
    if [ -f "$LOCK/run" ]; then read -r HELD_RUN < "$LOCK/run" || true; fi
    if [ -f "$LOCK/holder" ]; then read -r HELD_BY < "$LOCK/holder" || true; fi
    if [ -f "$LOCK/expires" ]; then read -r HELD_EXP < "$LOCK/expires" || true; fi
}

# lease_free: (under the mutex) true if no other live rollout holds the lease.
lease_free() {
    [ -d "$LOCK" ] || return 0
    lease_holder
    [ "$HELD_RUN" = "$RUN" ] && return 0
    [ -n "$TAKEOVER" ] && [ "$HELD_RUN" = "$TAKEOVER" ] && return 0
    case $HELD_EXP in
        "" | *[!0-9]*) return 1 ;; # no readable expiry: fresh, never "expired"
    esac
    [ "$NOW" -ge "$HELD_EXP" ]
}

# lease_write: make the lease ours, complete before it becomes visible (our
# own lease, as a resumed run finds it, only gets a new expiry).  Every fork
# counts on a hundred hosts: the tests keep to builtins where they can.
lease_write() {
    if [ "$HELD_RUN" = "$RUN" ] && [ -d "$LOCK" ]; then
        put "$LOCK/expires" $((NOW + LEASE))
        return 0
    fi
    t="$FD/lock.new.$$"
    if [ -e "$t" ]; then rm -rf "$t"; fi
    mkdir "$t"
    printf '%s\n' "$RUN" > "$t/run"
    printf '%s\n' "$HOLDER" > "$t/holder"
    echo $((NOW + LEASE)) > "$t/expires"
    if [ -d "$LOCK" ]; then rm -rf "$LOCK"; fi # under the mutex: nobody reads it now
    mv "$t" "$LOCK"
}

# lease_take: hold the mutex, then take (or renew) the lease; exit EX_LOCKED
# naming the holder if another rollout's lease is live past $WAIT seconds.
lease_take() {
    require
    if [ ! -d "$FD" ] || [ ! -d "$REL" ]; then mkdir -p "$FD" "$REL"; fi
    NOW=$(date +%s)
    DEADLINE=$((NOW + WAIT))
    HELD_RUN=""
    while :; do
        mutex_take
        if lease_free; then
            lease_write
            return 0
        fi
        NOW=$(date +%s)
        if [ "$NOW" -ge "$DEADLINE" ]; then
            until=$(date -u -d "@$HELD_EXP" +%H:%M:%SZ 2> /dev/null || echo "$HELD_EXP")
            die "locked by $HELD_BY until $until" "$EX_LOCKED"
        fi
        flock -u 9 # let the holder's next script in while we wait
        sleep 1
    done
}

# lease_renew: (a later script of the same rollout) refuse to go on if our
# lease was taken over; push its expiry out otherwise.
lease_renew() {
    NOW=$(date +%s)
    DEADLINE=$((NOW + WAIT))
    mutex_take
    lease_holder
    [ "$HELD_RUN" = "$RUN" ] || die "lost the lock (another rollout took over an expired lease)" "$EX_LOCKED"
    put "$LOCK/expires" $((NOW + LEASE))
}

# lease_give_back: release the lease, but only if it is still ours.
lease_give_back() {
    lease_holder
    if [ "$HELD_RUN" = "$RUN" ]; then rm -rf "$LOCK"; fi # under the mutex
}

# lease_break: drop the lease whoever holds it (once no script runs here).
lease_break() {
    DEADLINE=$(($(date +%s) + WAIT))
    [ -d "$LOCK" ] || exit 0
    mutex_take
    rm -rf "$LOCK"
}
