#!/usr/bin/env bash
# The demo command (README): installs what is missing, then runs scripts/demo.ts. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: needs root (it creates a network namespace and starts dockerd)" >&2; exit 1; }
bash scripts/setup.sh
bun scripts/demo.ts "$@"
