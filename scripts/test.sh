#!/usr/bin/env bash
# Install everything (Python deps, Docker, the locally built base image) and
# run the whole test suite: unit tests, the real-sshd fleet, build containers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/docker-up.sh
scripts/base-image.sh
exec .venv/bin/python -m pytest "$@"
