# shellcheck shell=dash
# The postinstall of a package built with `flip_current: postinst`: make this
# package's release `current` the way fleetdist's activation does, with the
# same functions (`flip` and `remember` of fleetdist/release/sh/activate.sh,
# inlined before this file with lib.sh), and record the release it replaced
# as `previous`.  fleetdist assigns the layout's paths (R, REL, CUR, FD,
# PREVF, ...) and ID, this package's release, before it.
# No mutex: fleetdist itself installs packages while it holds it, and this
# script then runs inside that install.

mkdir -p "$FD"
current_id "$ID"
# "?": `current` pointed at something that is not a release.
[ "$CID" != "?" ] || CID=""
if [ "$CID" != "$ID" ]; then remember "$CID"; fi
flip "$ID"
