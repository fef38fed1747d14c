#!/bin/sh
# Installs edgeport from a release: a directory that `bun run release` wrote (dist/release) or the
# base URL it was uploaded to. Picks the build for this machine, checks it against SHA256SUMS
# (refusing on a mismatch), and installs it as PREFIX/edgeport.
#
#   sh install.sh [--prefix DIR] [--target TARGET] [--dry-run] DIR|URL
#   curl -fsSL https://example.org/edgeport/install.sh | sh -s -- https://example.org/edgeport/v0.1.0
#
# PREFIX defaults to /usr/local/bin as root, else ~/.local/bin. TARGET is linux-x64, linux-arm64,
# darwin-x64, darwin-arm64, or an x64 one with -baseline (picked on CPUs without AVX2).
# Environment: EDGEPORT_RELEASE (the source), EDGEPORT_PREFIX, EDGEPORT_TARGET.
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }

src=${EDGEPORT_RELEASE:-}
prefix=${EDGEPORT_PREFIX:-}
target=${EDGEPORT_TARGET:-}
dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --target) [ $# -ge 2 ] || die "--target needs a target"; target=$2; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) src=$1; shift ;;
  esac
done
[ -n "$src" ] || die "say where the release is: a directory (dist/release) or a base URL (see --help)"

# The machine's target: the OS and CPU, and -baseline on an x64 CPU without AVX2.
detect_target() {
  case $(uname -s) in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "no edgeport build for $(uname -s) here (Windows: use install.ps1)" ;;
  esac
  case $(uname -m) in
    x86_64|amd64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) die "no edgeport build for the CPU $(uname -m)" ;;
  esac
  # an x64 shell under Rosetta on Apple silicon: the arm64 build runs natively
  if [ "$os-$arch" = darwin-x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
    arch=arm64
  fi
  suffix=
  if [ "$arch" = x64 ]; then
    if [ "$os" = linux ]; then
      grep -qw avx2 /proc/cpuinfo 2>/dev/null || suffix=-baseline
    else
      sysctl -n machdep.cpu.leaf7_features 2>/dev/null | grep -qw AVX2 || suffix=-baseline
    fi
  fi
  echo "$os-$arch$suffix"
}

[ -n "$target" ] || target=$(detect_target)
file=edgeport-$target

if [ -z "$prefix" ]; then
  if [ "$(id -u)" = 0 ]; then prefix=/usr/local/bin; else prefix=${HOME:?HOME is not set}/.local/bin; fi
fi

if [ "$dry" = 1 ]; then
  echo "would install $file from $src to $prefix/edgeport"
  exit 0
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else die "neither sha256sum nor shasum is installed: cannot check the download"
  fi
}

# fetch NAME DEST: from the release directory, or from the base URL with curl or wget
fetch() {
  case $src in
    http://*|https://*|file://*)
      url=${src%/}/$1
      if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$url" || die "could not download $url"
      elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$url" || die "could not download $url"
      else die "neither curl nor wget is installed: cannot download $url"
      fi ;;
    *)
      [ -d "$src" ] || die "$src is neither a directory nor an http(s):// URL"
      [ -f "$src/$1" ] || die "$src has no $1 (it has: $(cd "$src" && ls | tr '\n' ' '))"
      cp "$src/$1" "$2" ;;
  esac
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/edgeport-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch SHA256SUMS "$tmp/SHA256SUMS"
want=$(awk -v f="$file" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
[ -n "$want" ] || die "this release has no $file (SHA256SUMS lists: $(awk '{ print $2 }' "$tmp/SHA256SUMS" | tr '\n' ' '))"
fetch "$file" "$tmp/$file"
got=$(sha256 "$tmp/$file")
if [ "$got" != "$want" ]; then
  die "checksum mismatch for $file: SHA256SUMS says $want, the downloaded file is $got; not installing"
fi

mkdir -p "$prefix" || die "cannot create $prefix (run as root, or choose --prefix)"
# a new file beside the old one, then a rename: a running edgeport keeps its own copy
cp "$tmp/$file" "$prefix/.edgeport.new.$$" || die "cannot write to $prefix (run as root, or choose --prefix)"
chmod 755 "$prefix/.edgeport.new.$$"
if ! out=$("$prefix/.edgeport.new.$$" version 2>&1); then
  rm -f "$prefix/.edgeport.new.$$"
  die "the $file build does not run on this machine, not installing it: $out"
fi
mv -f "$prefix/.edgeport.new.$$" "$prefix/edgeport"
version=$(echo "$out" | head -n 1)

echo "installed $version as $prefix/edgeport (sha256 $got)"
case ":$PATH:" in
  *":$prefix:"*) cmd=edgeport ;;
  *) cmd=$prefix/edgeport; echo "note: $prefix is not on your PATH" ;;
esac
echo "next: $cmd service install --dry-run   (see docs/setups/ for your VM; add --forwarder inside the VM)"
