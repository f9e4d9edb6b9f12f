# shellcheck shell=dash
# What the controller learns about a host, printed one record per line, each
# behind "@@" like every protocol line (so logs and tails can leave them out):
#   previous ID            the release `current` last replaced
#   lock HOLDER            who holds the lease (free text, display only)
#   current ID | current ? a staged release, or something else
#   release EPOCH ID       a staged release and when it was staged
#   tested ID              it passed its in-place tests here
#   pending RUN ACTION FROM TO   a flip made but never confirmed
# Every ID printed has passed is_id, and only fleetdist writes to the
# protocol channel (fd 3, see lib.sh), so no name on the host can forge a
# record (parsed by fleetdist.release.facts.parse_facts).

# facts [GUESS]: print the records above; sets CID (see current_id) and PREV.
facts() {
    read_previous
    lk=""
    if [ -d "$LOCK" ]; then
        lease_holder
        lk=$HELD_BY
    fi
    printf '@@previous %s\n@@lock %s\n' "$PREV" "$lk" >&3
    current_id "${1:-}"
    [ -z "$CID" ] || say "@@current $CID"
    release_ids
    set --
    for x in $IDS; do
        set -- "$@" "releases/$x/$MARKER"
        if [ -f "$TESTED/$x" ]; then say "@@tested $x"; fi
    done
    # One exec for every marker's mtime: "@@release EPOCH releases/ID/MARKER".
    if [ "$#" -gt 0 ]; then cd "$R" && stat -c '@@release %.9Y %n' -- "$@" >&3; fi
    if [ -f "$PENDING" ]; then
        p=""
        read -r p < "$PENDING" || true
        printf '@@pending %s\n' "$p" >&3
    fi
}
