#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds the binary, runs every test:
# unit tests, in-process relay tests on real sockets, and end-to-end tests of the compiled binary
# against a real dockerd in a network namespace that plays the VM. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: the end-to-end tests need root (network namespaces, dockerd)" >&2; exit 1; }
bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
bun test --timeout 180000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
pass=$(grep -E '^ *[0-9]+ pass$' "$log" | tail -1 | tr -dc 0-9)
fail=$(grep -E '^ *[0-9]+ fail$' "$log" | tail -1 | tr -dc 0-9)
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$rc"
