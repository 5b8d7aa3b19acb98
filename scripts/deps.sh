#!/bin/sh
# Installs the Debian packages dealgate needs to build, run and test; only the missing ones.
# Usage: scripts/deps.sh [run|test]
set -eu
pkgs="build-essential cmake pkg-config libcivetweb-dev libcjson-dev libcurl4-openssl-dev
libmbedtls-dev libinih-dev libsqlite3-dev libcsv-dev"
if [ "${1:-run}" = test ]; then
  pkgs="$pkgs libcmocka-dev python3 clang libclang-rt-14-dev wrk nginx-light openssl sqlite3 curl chromium"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
