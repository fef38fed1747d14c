#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds the binary, checks format and
# lint (Biome: the house style, and no file over 300 lines or function over 80 in src/), runs every test:
# unit tests, in-process relay tests on real sockets, and end-to-end tests of the compiled binary
# against a real dockerd in a network namespace that plays the VM; then, when no test files are
# named, the Windows tier (scripts/test-windows.sh: the Windows build under Wine). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: the end-to-end tests need root (network namespaces, dockerd)" >&2; exit 1; }
bash scripts/setup.sh
log=$(mktemp)
wlog=$(mktemp)
trap 'rm -f "$log" "$wlog"' EXIT
set +e
lrc=0
if [ $# -eq 0 ]; then
  echo "lint: biome ci (format, lint, file and function length)"
  ./node_modules/.bin/biome ci --colors=off --max-diagnostics=30 src test scripts
  lrc=$?
  [ "$lrc" = 0 ] && echo "lint: clean" || echo "lint: FAILED (npx biome check --write src test scripts fixes the format; the rest it names)"
fi
bun test --timeout 180000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
wrc=0
if [ $# -eq 0 ]; then
  bash scripts/test-windows.sh 2>&1 | tee "$wlog"
  wrc=${PIPESTATUS[0]}
fi
set -e
count() { { grep -E "^ *[0-9]+ $2\$" "$1" || true; } | tail -1 | tr -dc 0-9; }
lp=$(count "$log" pass) lf=$(count "$log" fail) wp=$(count "$wlog" pass) wf=$(count "$wlog" fail)
# a tier that failed before its tests ran (a build, an install) counts as one failure
[ "$rc" = 0 ] || [ "${lf:-0}" != 0 ] || lf=1
[ "$wrc" = 0 ] || [ "${wf:-0}" != 0 ] || wf=1
# the lint step counts as one failure of the Linux tier
[ "$lrc" = 0 ] || lf=$((${lf:-0} + 1))
[ $# -gt 0 ] || echo "linux: ${lp:-0} passed, ${lf:-0} failed; windows (wine): ${wp:-0} passed, ${wf:-0} failed"
echo "$((${lp:-0} + ${wp:-0})) passed, $((${lf:-0} + ${wf:-0})) failed"
[ "$rc" = 0 ] && [ "$wrc" = 0 ] && [ "$lrc" = 0 ]
