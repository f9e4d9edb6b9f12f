# shellcheck shell=dash
# Lists in the variables fleetdist assigns to a build script (BUILD_DEPS,
# TESTS, ...) hold one item a line, with `\` and newline escaped as `\\` and
# `\n` (machines.py), so an item may hold anything, a multi-line test
# command included, and still travel as one quoted variable.

# item LINE: set IT to the item LINE encodes; false for an empty line (an
# empty list is one empty line).  printf %b undoes the escapes: every other
# backslash was doubled, so no other escape can occur.
item() {
    [ -n "$1" ] || return 1
    IT=$(printf '%bx' "$1")
    # The x keeps a trailing newline of the item from $(...)'s stripping.
    IT=${IT%x}
}
