#!/usr/bin/env bash
# The Windows tier: the Windows build (bun-windows-x64) run for real under Debian's Wine 8.
# Installs wine64 and mingw-w64 when missing (without Recommends: 32 packages, not ~106), builds the
# ProcessPrng shim Bun's Windows runtime needs and Wine 8 lacks (scripts/windows/), builds
# dist/edgeport-windows-x64.exe, makes a throwaway Wine prefix under a temp dir, runs
# test/windows/*.wine.ts (bun test picks up *.test.ts only, so the Linux run never sees them) and
# tears it all down: the prefix's own wineserver (and with it every Windows process of this prefix)
# is stopped by prefix, and the temp dir, which also holds Wine's server socket dir, is removed.
# Usage: bash scripts/test-windows.sh [test files]; docs/windows.md says what it covers.
set -euo pipefail
cd "$(dirname "$0")/.."
WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
t0=$(date +%s)

need=()
[ -x "$WINE" ] || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "test-windows: ${need[*]} missing, and installing them needs root" >&2; exit 1; }
  echo "test-windows: apt-get install --no-install-recommends ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgeport-wine.XXXXXX")
export WINEPREFIX="$tmp/prefix" TMPDIR="$tmp/tmp" WINEDEBUG=-all
# no menus written into $HOME, no Mono/Gecko installers; our bcryptprimitives.dll, not a builtin
export WINEDLLOVERRIDES="winemenubuilder.exe=d;mscoree=d;mshtml=d;bcryptprimitives=n"
mkdir -p "$WINEPREFIX" "$TMPDIR"
cleanup() {
  # every process of this prefix, then its server; other prefixes (other users of Wine) are untouched
  "$WINESERVER" -k >/dev/null 2>&1 || true
  "$WINESERVER" -w >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bun scripts/build.ts --target bun-windows-x64
x86_64-w64-mingw32-gcc -O2 -s -shared -o "$tmp/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c scripts/windows/bcryptprimitives.def -lbcrypt
# a persistent server for the run (Debian's default -p0 would restart it for every process)
"$WINESERVER" -p
"$WINE" wineboot -i >/dev/null 2>&1
# in system32, never next to the .exe (Wine loads a DLL beside the .exe first)
cp "$tmp/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
echo "test-windows: prefix ready in $(($(date +%s) - t0)) s ($("$WINE" --version 2>/dev/null || echo wine))"

export EDGEPORT_WINDOWS_EXE="$PWD/dist/edgeport-windows-x64.exe"
if [ $# -gt 0 ]; then files=("$@"); else files=(./test/windows/*.wine.ts); fi
set +e
bun test --timeout 120000 "${files[@]}"
rc=$?
set -e
echo "test-windows: the Windows tier took $(($(date +%s) - t0)) s"
exit "$rc"
