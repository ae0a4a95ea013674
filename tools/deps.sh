#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build and run, if any is missing; with
# --test also what the tests need: Chromium for the browser tests; Redis, PostgreSQL and HAProxy
# for the cluster tests, which start their own servers on loopback (never the system's).
set -euo pipefail
PKGS=(
  g++ cmake ninja-build pkg-config make git clang-format mold
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librocksdb-dev libsodium-dev libssl-dev libcpp-jwt-dev nlohmann-json3-dev
  libhiredis-dev libpq-dev libcurl4-openssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libmagic-dev libvips-dev
)
[ "${1:-}" = "--test" ] && PKGS+=(chromium redis-server postgresql haproxy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the tests' local S3 server (s3rver) and push receivers. Any node on PATH
# will do (some images ship NodeSource's, which conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
