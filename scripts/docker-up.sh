#!/usr/bin/env bash
# Makes a Docker engine available: installs Debian's docker.io, debootstrap
# and docker-compose when missing and starts dockerd when none answers. The
# engine runs with no bridge and no iptables rules: every container uses the
# host network and binds 127.0.0.1, so test traffic never leaves loopback.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
if ((${#need[@]})); then
  echo "docker-up: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  mkdir -p "$root/.tools"
  echo "docker-up: starting dockerd (--bridge=none --iptables=false)" >&2
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$root/.tools/dockerd.log" 2>&1 &
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "docker-up: dockerd did not start; see .tools/dockerd.log" >&2; exit 1; }
fi
# testcontainers-go attaches containers to a bridge network it creates
# ("reaper_default") unless one exists. Ours is created first, internal (no
# route out) on a tiny reserved range, and the suite detaches every
# container from it: containers use the host network only.
if ! docker network inspect reaper_default >/dev/null 2>&1; then
  docker network create --internal --subnet 198.18.255.0/29 --label org.testcontainers=true reaper_default >/dev/null
fi
