#!/usr/bin/env bash
# The checks every change passes before the tests, failing fast: ruff (lint,
# then format check), mypy (strict, configured in pyproject.toml) and then
# `shellcheck -S warning` on every shell script (fleetdist/**/*.sh,
# scripts/*.sh, .ci/run).  One definition for every caller: .ci/run,
# `inv lint` and the pre-commit hooks (.pre-commit-config.yaml).
#
#   scripts/lint.sh                 all four, in that order
#   scripts/lint.sh CHECK...        only these: ruff-check ruff-format mypy shellcheck
#
# ruff and mypy come from .venv when it exists (scripts/setup.sh makes it),
# and shellcheck is the Debian package scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .venv/bin ]; then PATH="$PWD/.venv/bin:$PATH"; fi

ALL=(ruff-check ruff-format mypy shellcheck)

log() { printf 'lint: %s\n' "$*" >&2; }

need() {
    command -v "$1" >/dev/null || { log "$1 not found: run scripts/setup.sh"; exit 2; }
}

shell_scripts() {
    find fleetdist scripts -name '*.sh' -type f -print0 | sort -z
    printf '%s\0' .ci/run
}

run_check() {
    case $1 in
        ruff-check) need ruff; ruff check --quiet ;;
        ruff-format) need ruff; ruff format --check --quiet ;;
        mypy) need mypy; mypy ;;
        shellcheck) need shellcheck; shell_scripts | xargs -0 shellcheck -S warning ;;
    esac
}

if [ "$#" -eq 0 ]; then set -- "${ALL[@]}"; fi
for check in "$@"; do
    case " ${ALL[*]} " in
        *" $check "*) ;;
        *) log "unknown check '$check' (known: ${ALL[*]})"; exit 2 ;;
    esac
done
for check in "$@"; do
    log "$check"
    run_check "$check" || { log "$check failed"; exit 1; }
done
