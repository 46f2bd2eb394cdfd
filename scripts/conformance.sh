#!/usr/bin/env bash
# The conformance matrix in one command: the golden vectors (and every
# THROTTLEKIT_VECTORS file) through every store × door, ending with a
# matched/run table. Stores come from containers (the default: Docker
# engine and images are set up here, images cached between runs), local
# binaries, or endpoints in the environment:
#
#     ./scripts/conformance.sh [--stores containers|binaries|env]
#
# With containers, the official images work too: set THROTTLEKIT_REDIS_IMAGE,
# THROTTLEKIT_POSTGRES_IMAGE and THROTTLEKIT_MOTO_IMAGE (the defaults, when
# this script does not build its own, are redis:7, postgres:16 and
# motoserver/moto:5.2.5). Every store must come up: a missing one fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stores=containers
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stores) stores="${2:?--stores needs containers, binaries or env}"; shift 2 ;;
    --stores=*) stores="${1#--stores=}"; shift ;;
    *) echo "conformance: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$stores" in containers | binaries | env) ;; *) echo "conformance: --stores must be containers, binaries or env" >&2; exit 2 ;; esac
export PATH="$root/.tools/bin:$PATH"
./scripts/install-tools.sh
./scripts/install-services.sh  # redis-server, postgres, moto for binaries; redis-cli for all
./scripts/install-pysdk.sh     # the Python doors
if [[ "$stores" == containers ]]; then
  ./scripts/docker-up.sh
  eval "$(./scripts/build-images.sh redis postgres moto | sed 's/^/export THROTTLEKIT_/')"
  # Ryuk (testcontainers' reaper) cannot be pulled here; the suite removes
  # its own containers, failed or not.
  export TESTCONTAINERS_RYUK_DISABLED=true
fi
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
start=$SECONDS
THROTTLEKIT_STORES="$stores" THROTTLEKIT_CONFORMANCE_REQUIRE="${THROTTLEKIT_CONFORMANCE_REQUIRE:-all}" \
  THROTTLEKIT_MATRIX_REPORT="$report" go -C conformance test -count=1 -run '^TestMatrix' .
echo
echo "conformance matrix, stores from $stores, in $((SECONDS - start)) s:"
cat "$report"
