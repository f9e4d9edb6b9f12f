# shellcheck shell=dash
# Helpers every host script shares.  fleetdist inlines this file after it has
# assigned the layout's paths (R, REL, CUR, FD, LEDGER, ...) and the exit codes
# (EX_LOCKED, EX_REVERTED, EX_NOT_STAGED, EX_NOT_TESTED) as quoted variables.

# Every script starts with `exec 3>&1 1>&2` (see steps.preamble): fd 3 is the
# protocol channel to the controller, and everything else that writes to
# stdout, fleetdist's own commands or anything a release runs, lands on
# stderr, so no program can print a line the controller would act on.

# say LINE: one protocol line to the controller.
say() {
    printf '%s\n' "$1" >&3
}

# die MESSAGE [CODE]: say why on stderr and stop the script.
die() {
    printf '%s\n' "$1" >&2
    exit "${2:-1}"
}

# require: stop with one line naming the first command this host lacks (see
# README, "Host requirements"); `command -v` is a builtin, so this forks nothing.
require() {
    for c in flock stat tar mv ln date readlink; do
        command -v "$c" > /dev/null 2>&1 || die "this host has no '$c' command, which fleetdist needs (see README: Host requirements)"
    done
}

# is_id VALUE: true if VALUE is a release id (the grammar of fleetdist.config.names).
# Names read from the host (directories, link targets, files) pass through
# this before they are printed, so none can forge a protocol line.
is_id() {
    case $1 in
        "" | [!A-Za-z0-9]* | *[!A-Za-z0-9._+-]* | *..*) return 1 ;;
    esac
    [ "${#1}" -le 128 ]
}

# put FILE TEXT: write TEXT (one line) to FILE by a rename, so a reader sees
# the old or the new line, never half of one, and a link at FILE is replaced,
# not followed.
put() {
    printf '%s\n' "$2" > "$1.tmp.$$"
    mv -f "$1.tmp.$$" "$1"
}

# jstr VALUE: set J to VALUE as a JSON string, or null when empty.
# Values are release ids (is_id), so nothing needs escaping.
jstr() {
    if [ -n "$1" ]; then J="\"$1\""; else J=null; fi
}

# ledger HEAD MIDDLE TAIL FROM TO: append a ledger line rendered on the
# controller (report.ledger.template) with FROM and TO spliced in.
ledger() {
    jstr "$4"
    jf=$J
    jstr "$5"
    printf '%s%s%s%s%s\n' "$1" "$jf" "$2" "$J" "$3" >> "$LEDGER"
}

# run_in DIR COMMAND...: run a recipe command (test, hook, healthcheck) in DIR,
# in a subshell that alone sees the recipe's environment (user_env, rendered
# by fleetdist), so no recipe variable can change this script's own.  Its
# output goes to stderr; it gets neither the protocol channel (fd 3) nor the
# mutex (fd 9), so a daemon it starts cannot hold the lease, nor stdin, which
# may still carry the upload.
run_in() {
    (
        trap - HUP PIPE
        cd "$1" || exit 1
        shift
        user_env
        exec "$@"
    ) >&2 3>&- 9>&- < /dev/null
}

# release_ids: set IDS to the staged releases (marker present, valid name).
release_ids() {
    IDS=""
    for d in "$REL"/*/; do
        x=${d%/}
        x=${x##*/}
        is_id "$x" || continue
        [ -f "$REL/$x/$MARKER" ] || continue
        IDS="$IDS $x"
    done
}

# current_id [GUESS]: set CID to the staged release `current` points at, "" if
# there is no `current`, "?" if it points anywhere else.  The link is compared
# by identity (test -ef, a builtin), never parsed; GUESS is tried first.
# shellcheck disable=SC2034 # CID is this function's result
current_id() {
    CID=""
    [ -e "$CUR" ] || [ -h "$CUR" ] || return 0
    if [ -n "${1:-}" ] && is_id "$1" && [ -f "$REL/$1/$MARKER" ] && [ "$CUR" -ef "$REL/$1" ]; then
        CID=$1
        return 0
    fi
    release_ids
    for x in $IDS; do
        if [ "$CUR" -ef "$REL/$x" ]; then
            CID=$x
            return 0
        fi
    done
    CID="?"
}

# read_previous: set PREV to the recorded previous release ("" if none or not an id).
read_previous() {
    PREV=""
    if [ -f "$PREVF" ]; then read -r PREV < "$PREVF" || true; fi
    is_id "$PREV" || PREV=""
}

# detached FUNC: run FUNC (a flip and its checks) detached from the
# controller.  SIGHUP and SIGPIPE are ignored and its output goes to files,
# replayed afterwards, so if the connection drops the script still finishes
# (confirms or reverts) and only the replay is lost.  Sets RC to FUNC's status.
# shellcheck disable=SC2034 # RC is this function's result
detached() {
    out="$FD/activate.$$.out"
    err="$FD/activate.$$.err"
    trap '' HUP PIPE
    set +e
    (
        set -e
        "$1"
    ) > "$out" 2> "$err" 3>&-
    RC=$?
    set -e
    # Replayed only if there is anything to say: each fork counts on a hundred hosts.
    if [ -s "$out" ] || [ -s "$err" ]; then cat "$out" "$err" >&2 2> /dev/null || true; fi
    rm -f "$out" "$err"
}
