#!/usr/bin/env bash
# The main job end to end on the embedded default fleet (three local hosts,
# no SSH, no Docker): build the example app, deploy 1.0.0 then 1.1.0, show
# status, roll back and forward again, run the live release, show the merged
# ledger.  FLEET_ROOT picks where the hosts live (default .fleet/ in the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
fleet_root="${FLEET_ROOT:-.fleet}"

step() { printf '\n== %s\n' "$*"; }
step "inv build";                                       inv build
step "fab -H 'web[01-03]' deploy --env=prod  (1.0.0)";  fab -H 'web[01-03]' deploy --env=prod
step "HELLO_VERSION=1.1.0 fab -H 'web[01-03]' deploy";  HELLO_VERSION=1.1.0 fab -H 'web[01-03]' deploy --env=prod
step "fab status";                                      fab status
step "fab rollback  (back to 1.0.0)";                   fab rollback
step "fab rollback  (forward to 1.1.0 again)";          fab rollback
step "fab status";                                      fab status
step "run the live release on web01";                   (cd "$fleet_root/web01/srv/apps/hello/current" && python3 -m hello fleet)
step "fleetdist history";                               fleetdist history
