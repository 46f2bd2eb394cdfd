#!/usr/bin/env bash
# Installs the database servers the integration tests start on loopback
# ports (the tests start and stop them; nothing is left running). Debian's
# packages; needs root or sudo when something is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "install-services: apt-get install ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package starts a system Redis on 6379 where an init system runs;
  # the tests never use it.
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "install-services: redis-server and redis-cli are required and could not be installed" >&2
  exit 1
}
