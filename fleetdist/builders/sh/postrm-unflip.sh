# shellcheck shell=dash
# The postremove of a package built with `flip_current: postinst`: if
# `current` named this package's release, point it at the newest release
# left (by version order), or remove it when none is left, with the flip of
# fleetdist/release/sh/activate.sh (inlined before this file with lib.sh).
# fleetdist assigns the layout's paths and ID, this package's release.
# The link is compared by its text, not by identity (-ef): the directory it
# named is already gone.  No mutex, as in postinst-flip.sh.

if [ "$(readlink "$CUR" 2> /dev/null || true)" = "releases/$ID" ]; then
    release_ids
    # IDS holds release ids only (is_id): splitting it is safe.
    # shellcheck disable=SC2086
    next=$(for x in $IDS; do [ "$x" = "$ID" ] || printf '%s\n' "$x"; done | sort -V | tail -n 1)
    flip "$next"
    read_previous
    # `previous` named the release now removed, or the one now current.
    if [ "$PREV" = "$ID" ] || [ "$PREV" = "$next" ]; then remember ""; fi
fi
