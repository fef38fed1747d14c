#!/usr/bin/env bash
# Installs what edgeport's demo and tests need on a fresh Debian 12 machine that has Node/npm and root:
# Bun (from npm), the project's packages, and Debian's docker.io, busybox-static, iproute2, nftables,
# curl, iperf3, socat, systemd (systemd-analyze checks the service units) and python3 (parses the
# launchd plists in the service tests) when missing. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
if ! command -v bun >/dev/null 2>&1 || [ "$(bun --version 2>/dev/null)" != "$BUN_VERSION" ]; then
  echo "setup: installing bun $BUN_VERSION with npm"
  npm install -g --no-fund --no-audit "bun@$BUN_VERSION" >/dev/null
fi
command -v bun >/dev/null || { echo "setup: bun is not on PATH after npm install -g bun" >&2; exit 1; }

need=()
for pair in dockerd:docker.io ip:iproute2 nft:nftables curl:curl iperf3:iperf3 socat:socat nsenter:util-linux \
  systemd-analyze:systemd python3:python3; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# the test image is built from Debian's static busybox (a dynamic one cannot run in an empty image)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

bun install --frozen-lockfile >/dev/null
bun run build
