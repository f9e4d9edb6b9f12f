# shellcheck shell=dash
# distman's tree on a host (`fleetdist dist --hosts`, see release/diststeps.py):
#   <dir>/<name> -> versions/<name>.<N>.<commit7>   relative link, replaced by rename(2)
#   <dir>/.<name>.dist                             what the link points at
#   <DEPLOY_ROOT>/.distman/epoch                    bumped by every change (EPOCHF)
# fleetdist's own records live under "$R" (a ReleaseLayout at
# DEPLOY_ROOT/.fleetdist/dist): the lease, the ledger, the uploaded payload
# ("$REL/$ID", one slot per target, unpacked by stage.sh's unpack_tar), the
# tested mark, and "$DPEND", the links a switch is about to move.  Every
# target path and name was checked by the controller (config.names); names
# read here pass is_dname before they are printed.

# is_dname VALUE: true if VALUE is a dist target or version name
# (config.names.DIST_NAME).
is_dname() {
    case $1 in
        "" | [!A-Za-z0-9_]* | *[!A-Za-z0-9._+-]* | *..*) return 1 ;;
    esac
    [ "${#1}" -le 128 ]
}

# dist_facts K DEST: what target K has here, one protocol line each:
#   @@dv K NAME   versions/NAME exists (NAME starts with the link's name)
#   @@dl K NAME   DEST links to versions/NAME; "@@dl K ?" it links elsewhere
#   @@df K        DEST exists and is not a link: fleetdist will not replace it
dist_facts() {
    name=${2##*/}
    vers=${2%/*}/versions
    for v in "$vers/$name".*; do
        x=${v##*/}
        is_dname "$x" || continue
        if [ -e "$v" ] || [ -h "$v" ]; then say "@@dv $1 $x"; fi
    done
    if [ -h "$2" ]; then
        t=$(readlink "$2") || t=""
        x=${t#versions/}
        if [ "$t" = "versions/$x" ] && is_dname "$x"; then say "@@dl $1 $x"; else say "@@dl $1 ?"; fi
    elif [ -e "$2" ]; then
        say "@@df $1"
    fi
}

# dist_drop_payloads: remove payloads of other runs ("$ID" stays: a resumed run's).
dist_drop_payloads() {
    for d in "$REL"/*/; do
        x=${d%/}
        x=${x##*/}
        if [ "$x" != "$ID" ] && [ -d "$REL/$x" ]; then rm -rf -- "${REL:?}/$x"; fi
    done
}

# dist_same A B: true if A and B hold the same tree (names, types, modes,
# contents, link texts), as `match: content` compares versions.
dist_same() {
    if [ -d "$1" ] && [ ! -h "$1" ]; then
        [ -d "$2" ] && [ ! -h "$2" ] || return 1
        a=$(cd "$1" && find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort) || return 1
        b=$(cd "$2" && find . -mindepth 1 -printf '%y %m %p %l\n' | LC_ALL=C sort) || return 1
        [ "$a" = "$b" ] && diff -r --no-dereference -q "$1" "$2" > /dev/null 2>&1
    else
        [ -f "$2" ] && [ ! -h "$2" ] || return 1
        [ "$(stat -c %a "$1")" = "$(stat -c %a "$2")" ] && cmp -s "$1" "$2"
    fi
}

# dist_outside DIR: stop unless DIR (its nearest existing folder, resolved) lies
# outside fleetdist's own records ("$R"'s parent): the controller checked the
# path as text, but a symlinked folder on the host could lead in there.
dist_outside() {
    d=$1
    while [ ! -d "$d" ]; do
        d=${d%/*}
        d=${d:-/}
    done
    real=$(cd "$d" && pwd -P) || die "$1: cannot read where it leads"
    ours=$(mkdir -p "${R%/*}" && cd "${R%/*}" && pwd -P) || die "${R%/*}: cannot read it"
    case $real/ in "$ours"/*) die "$1 leads into fleetdist's own records ($real): refused" ;; esac
}

# dist_taken VERSIONS NUMBERED: true if VERSIONS holds NUMBERED (`NAME.N`) or
# NUMBERED.COMMIT: that number is used (read exactly: `NAME.N.0.x` is target
# `NAME.N`'s, not ours).
dist_taken() {
    for v in "$1/$2" "$1/$2".*; do
        [ -e "$v" ] || [ -h "$v" ] || continue
        t=${v#"$1/$2"}
        case $t in .*.*) ;; *) return 0 ;; esac
    done
    return 1
}

# dist_place SLOT DEST FILE NUMBERED [OLDER...]: make versions/FILE (FILE is
# NUMBERED.COMMIT, or NUMBERED) beside DEST from the payload's SLOT, unless it
# exists (MADE=0), or unless one of the OLDER versions (`match: content`, newest
# first) holds the same tree: then that one is used (PLACED, and "@@dmatch SLOT
# OLDER" tells the controller).  A version appears by one rename of a complete
# copy, under the folder's flock, and only if its number is still free: the
# controller chose it from the probe, and a local dist may have taken it since.
# shellcheck disable=SC2034 # MADE and PLACED are this function's results
dist_place() {
    MADE=0 PLACED=$3
    s=$1 dir=${2%/*} numbered=$4
    vers=$dir/versions
    dist_outside "$dir"
    dist_outside "$vers"
    if [ -e "$vers/$3" ] || [ -h "$vers/$3" ]; then return 0; fi
    if [ ! -e "$REL/$ID/$s" ] && [ ! -h "$REL/$ID/$s" ]; then
        rm -rf -- "${REL:?}/$ID"
        die "the uploaded payload has no slot $s (a version was deleted meanwhile?): run again"
    fi
    tmp="$vers/.${2##*/}.tmp.$RUN"
    shift 4
    for old in "$@"; do
        if dist_same "$REL/$ID/$s" "$vers/$old"; then
            PLACED=$old
            say "@@dmatch $s $old"
            return 0
        fi
    done
    mkdir -p "$vers"
    rm -rf -- "$tmp"
    mv -T "$REL/$ID/$s" "$tmp"
    # Under the flock a local `fleetdist dist` holds on the folder for its whole
    # run, so one run's numbering never races the other's.
    exec 8< "$dir"
    flock -w 600 8 || die "$dir stayed locked for 600s (a local dist?): run again"
    if dist_taken "$vers" "$numbered"; then
        exec 8<&-
        mv -T "$tmp" "$REL/$ID/$s"
        dist_unmake
        die "version $numbered appeared meanwhile in $vers (a local dist?): run again"
    fi
    mv -T "$tmp" "$vers/$PLACED"
    exec 8<&-
    MADE=1
}

# dist_in VERSION COMMAND...: run an in-place test in VERSION (a directory, or the
# versions/ folder of a file), VER telling user_env which version it is about.
dist_in() {
    VER=$1
    shift
    w=$VER
    [ -d "$w" ] || w=${VER%/*}
    run_in "$w" "$@"
}

# dist_test_failed MESSAGE: drop the versions this run made (dist_unmake, rendered
# by fleetdist) and the payload, so the host is as it was, then stop.
dist_test_failed() {
    rm -f "$TESTED/$ID"
    dist_unmake
    rm -rf -- "${REL:?}/$ID"
    die "$1"
}

# dist_linkable DEST: DEST is a link or nothing (a file or directory stays put), in a
# folder outside fleetdist's records.
dist_linkable() {
    dist_outside "${1%/*}"
    if [ -e "$1" ] && [ ! -h "$1" ]; then
        die "$1 is not a symlink: fleetdist will not replace it (move it away first)"
    fi
}

# dist_hold K DEST: record in "$DPEND.new" how DEST and its .dist file are now.
dist_hold() {
    p="$DPEND.new/$1"
    printf '%s\n' "$2" > "$p.dest"
    if [ -h "$2" ]; then readlink "$2" > "$p.link"; fi
    info="${2%/*}/.${2##*/}.dist"
    if [ -f "$info" ] || [ -h "$info" ]; then cp -pP "$info" "$p.info"; fi # a link as a link
}

# dist_link DEST FILE: point DEST at versions/FILE by one rename over the old link.
dist_link() {
    mkdir -p "${1%/*}"
    tmp="${1%/*}/.${1##*/}.link.$$"
    rm -f "$tmp"
    ln -s "versions/$2" "$tmp"
    flock -w 600 "${1%/*}" mv -T "$tmp" "$1" 3>&- 9>&-
}

# dist_info INFO TEXT: replace the .dist file whole.
dist_info() {
    printf '%s' "$2" > "$1.tmp.$$"
    mv -fT "$1.tmp.$$" "$1"
}

# dist_recommit INFO COMMIT TEXT: after -n/-c/--reset, the .dist file names the
# commit of the version now linked and keeps its other fields (TEXT if it has none,
# or if it is a symlink: what it points at is never read into it).
dist_recommit() {
    if [ -f "$1" ] && [ ! -h "$1" ] && grep -q '^commit: ' "$1"; then
        sed "s/^commit: .*/commit: $2/" "$1" > "$1.tmp.$$"
        mv -fT "$1.tmp.$$" "$1"
    else
        dist_info "$1" "$3"
    fi
}

# dist_epoch: DEPLOY_ROOT/.distman/epoch := nanoseconds now, mode 600 (caches compare it).
dist_epoch() {
    mkdir -p "${EPOCHF%/*}"
    (umask 077 && date +%s%N > "$EPOCHF.tmp.$$")
    mv -fT "$EPOCHF.tmp.$$" "$EPOCHF"
}

# dist_recover: links a switch recorded and never confirmed (its script died: we
# hold the mutex, so it is not running) go back where they were, with their .dist
# files; the epoch is bumped so caches notice, and the ledger says so.
dist_recover() {
    rm -rf -- "$DPEND.new" # a record never completed: nothing was moved yet
    [ -d "$DPEND" ] || return 0
    r_id=""
    if [ -f "$DPEND/id" ]; then read -r r_id < "$DPEND/id" || true; fi
    is_id "$r_id" || r_id=""
    for f in "$DPEND"/*.dest; do
        [ -f "$f" ] || continue
        p=${f%.dest}
        dest=""
        read -r dest < "$f" || true
        case $dest in /*) ;; *) continue ;; esac
        if [ -f "$p.link" ]; then
            old=""
            IFS= read -r old < "$p.link" || true # the text as it was, spaces and all
            tmp="${dest%/*}/.${dest##*/}.link.$$"
            rm -f "$tmp"
            ln -s "$old" "$tmp"
            mv -T "$tmp" "$dest"
        elif [ -h "$dest" ]; then
            rm -f "$dest"
        fi
        info="${dest%/*}/.${dest##*/}.dist"
        if [ -d "$info" ] && [ ! -h "$info" ]; then
            : # not ours to replace (dist_info refused to write there too)
        elif [ -f "$p.info" ] || [ -h "$p.info" ]; then
            # a copy: the record stays whole until it is dropped, so a recovery
            # killed here is redone by the next one, never read as "no file"
            cp -pP "$p.info" "$info.tmp.$$"
            mv -fT "$info.tmp.$$" "$info"
        else
            rm -f "$info"
        fi
    done
    dist_epoch
    echo "recovering: a dist switch ${r_id:+to $r_id }was never confirmed; its links are back" >&2
    say "@@drecovered ${r_id:--}"
    rm -rf -- "$DPEND"
    ledger "$LREC_A" "$LREC_B" "$LREC_C" "$r_id" ""
}

# dist_activate: run dist_switch (rendered by fleetdist) detached from the
# controller (see `detached`); if it stops half way, the links it recorded go
# straight back (EX_REVERTED).
dist_activate() {
    detached dist_switch
    if [ "$RC" -ne 0 ] && [ -d "$DPEND" ]; then
        dist_recover 3> /dev/null
        exit "$EX_REVERTED"
    fi
    return "$RC"
}

# -- `fleetdist cache --hosts`: the host's CACHE_ROOT from its DEPLOY_ROOT ---------
# distcache's contract (see distman/cache.py): everything but versions/ and the
# ignorable names ("$IGN", fleetdist's IGNORABLE), plus the versions the links
# use; a file whose size and mtime match is skipped, a version already cached is
# complete (it appeared by rename) and versions never change; a link moves only
# after its version is there.  Needs IGN and COPIED (a counter).

# dist_ignored NAME: true if NAME is one distcache skips.
dist_ignored() {
    set -f
    for p in $IGN; do
        # shellcheck disable=SC2254 # $p is a pattern on purpose
        case $1 in $p)
            set +f
            return 0
            ;;
        esac
    done
    set +f
    return 1
}

# dist_relink DST TEXT: make DST a link holding TEXT by one rename.
dist_relink() {
    if [ -h "$1" ] && [ "$(readlink "$1")" = "$2" ]; then return 0; fi
    if [ -d "$1" ] && [ ! -h "$1" ]; then rm -rf -- "$1"; fi
    tmp="${1%/*}/.${1##*/}.link.$$"
    rm -f "$tmp"
    ln -s "$2" "$tmp"
    mv -T "$tmp" "$1"
}

# dist_walk SRC DST REL: copy the folder SRC/REL into DST/REL (see above).
dist_walk() (
    mkdir -p "$2/$3"
    for e in "$1/$3"/* "$1/$3"/.[!.]* "$1/$3"/..?*; do
        [ -e "$e" ] || [ -h "$e" ] || continue
        n=${e##*/}
        r="$3/$n"
        if [ "$3" = . ] && [ "$n" = .fleetdist ]; then continue; fi
        if dist_ignored "$n"; then continue; fi
        if [ -h "$e" ]; then
            t=$(readlink "$e") || continue
            v=${t#versions/}
            if [ "$t" = "versions/$v" ] && is_dname "$v" && [ ! -e "$2/$3/versions/$v" ] && [ ! -h "$2/$3/versions/$v" ]; then
                if [ -e "$1/$3/versions/$v" ] || [ -h "$1/$3/versions/$v" ]; then
                    mkdir -p "$2/$3/versions"
                    rm -rf -- "$2/$3/versions/.$v.tmp.$$"
                    cp -PRp "$1/$3/versions/$v" "$2/$3/versions/.$v.tmp.$$"
                    mv -T "$2/$3/versions/.$v.tmp.$$" "$2/$3/versions/$v"
                    echo "version $r" >> "$COPIED"
                fi
            fi
            dist_relink "$2/$r" "$t"
        elif [ -d "$e" ]; then
            [ "$n" = versions ] || dist_walk "$1" "$2" "$r"
        elif [ -f "$e" ]; then
            if [ -f "$2/$r" ] && [ "$(stat -c '%s %Y' "$e")" = "$(stat -c '%s %Y' "$2/$r")" ]; then
                continue
            fi
            cp -p "$e" "$2/$3/.$n.tmp.$$"
            mv -fT "$2/$3/.$n.tmp.$$" "$2/$r"
            echo "file $r" >> "$COPIED"
        fi
    done
)

# dist_mark DST NAME TEXT MODE: replace DST/.distman/NAME whole.
dist_mark() {
    mkdir -p "$1/.distman"
    (umask 077 && printf '%s' "$3" > "$1/.distman/.$2.$$")
    chmod "$4" "$1/.distman/.$2.$$"
    mv -fT "$1/.distman/.$2.$$" "$1/.distman/$2"
}

# dist_cache SRC DST TTL FORCE DRY: as `fleetdist cache` on this host; says
# "@@cache skipped|fresh|stale|copied N".
dist_cache() {
    [ -d "$1" ] || die "source does not exist: $1"
    now=$(date +%s)
    if [ "$5" != 1 ] && [ "$4" != 1 ] && [ "$3" -gt 0 ] && [ -f "$2/.distman/last_check" ]; then
        last=0
        read -r last < "$2/.distman/last_check" || true
        last=${last%%.*}
        case $last in "" | *[!0-9]*) last=0 ;; esac
        if [ $((now - last)) -lt "$3" ]; then
            say "@@cache skipped"
            return 0
        fi
    fi
    se="" de=""
    if [ -f "$1/.distman/epoch" ]; then read -r se < "$1/.distman/epoch" || true; fi
    if [ -f "$2/.distman/epoch" ]; then read -r de < "$2/.distman/epoch" || true; fi
    if [ -n "$se" ] && [ "$se" = "$de" ] && [ "$4" != 1 ]; then
        if [ "$5" != 1 ]; then dist_mark "$2" last_check "$now
" 644; fi
        say "@@cache fresh"
        return 0
    fi
    if [ "$5" = 1 ]; then
        say "@@cache stale"
        return 0
    fi
    COPIED="$FD/cache.$$"
    : > "$COPIED"
    dist_walk "$1" "$2" .
    if [ -n "$se" ]; then dist_mark "$2" epoch "$se" 600; fi
    dist_mark "$2" last_check "$now
" 644
    say "@@cache copied $(wc -l < "$COPIED")"
    rm -f "$COPIED"
}
