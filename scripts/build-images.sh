#!/usr/bin/env bash
# Builds the local images the container tests and compose/ use, from Debian's
# packages (no registry is reachable here): a root file system made by
# debootstrap, imported with `docker import`; the server is a static binary
# on an empty image. An image is rebuilt only when its recipe (this file and
# the files it copies) changes: the recipe's digest is the image's tag.
#
#     scripts/build-images.sh [redis] [postgres] [moto] [server]   # default: all
#
# prints NAME_IMAGE=image lines for what it built or found. The server image
# is also tagged throttlekit/server:local, the name compose/ uses.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump RECIPE when a recipe below changes; files the images copy count too.
RECIPE=2
recipe="$( (echo "$RECIPE"; cat compose/images/*) | sha256sum | cut -c1-12)"
work="$root/.tools/images"
mkdir -p "$work"

# Asked before anything is built: a missing daemon is said at once, not
# after minutes of compiling.
if ! docker info >/dev/null 2>&1; then
  echo "build-images: no Docker daemon answers: start one (./scripts/docker-up.sh installs Debian's docker.io and starts dockerd on the host network)" >&2
  exit 1
fi
have() { docker image inspect "$1" >/dev/null 2>&1; }
wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || wanted=(redis postgres moto server)
wants() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

# rootfs NAME PACKAGES: a minimal Debian bookworm tree with PACKAGES.
rootfs() {
  local dir="$work/$1"
  rm -rf "$dir"
  echo "build-images: debootstrap $1 ($2)" >&2
  debootstrap --variant=minbase --include="$2" bookworm "$dir" "$mirror" >"$work/$1.log" 2>&1 \
    || { tail -20 "$work/$1.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
}

# import NAME IMAGE CMD...: the tree as an image.
import() {
  local dir="$work/$1" image="$2"
  shift 2
  tar -C "$dir" -c . | docker import -c "CMD $*" -c "USER root" - "$image" >/dev/null
  rm -rf "$dir"
}

redis="throttlekit/redis:$recipe"
if wants redis && ! have "$redis"; then
  rootfs redis redis-server
  import redis "$redis" '["redis-server"]'
fi

postgres="throttlekit/postgres:$recipe"
if wants postgres && ! have "$postgres"; then
  rootfs postgres postgresql
  install -m 0755 compose/images/postgres-entrypoint.sh "$work/postgres/usr/local/bin/postgres-entrypoint"
  import postgres "$postgres" '["/usr/local/bin/postgres-entrypoint"]'
fi

moto="throttlekit/moto:$recipe"
if wants moto && ! have "$moto"; then
  rootfs moto python3,python3-venv
  # The wheels are fetched by this machine's pip (which knows its way to
  # PyPI) for bookworm's Python 3.11, then installed offline in the tree.
  [[ "$(python3 -c 'import sys; print(sys.version_info[:2] == (3, 11))')" == True ]] \
    || { echo "build-images: the moto image needs python3 3.11 here to fetch matching wheels" >&2; exit 1; }
  rm -rf "$work/moto/tmp/wheels"
  python3 -m pip download -q -d "$work/moto/tmp/wheels" "moto[server]==5.2.5"
  chroot "$work/moto" /bin/sh -c 'python3 -m venv /opt/moto && /opt/moto/bin/pip install -q --no-index --find-links /tmp/wheels "moto[server]==5.2.5"' \
    >"$work/moto-pip.log" 2>&1 || { tail -20 "$work/moto-pip.log" >&2; exit 1; }
  rm -rf "$work/moto/tmp/wheels"
  # Where moto's own image keeps it, so one command line serves both images.
  ln -s /opt/moto/bin/moto_server "$work/moto/usr/local/bin/moto_server"
  import moto "$moto" '["/usr/local/bin/moto_server", "-H", "127.0.0.1", "-p", "5000"]'
fi

server="throttlekit/server:$(git rev-parse --short HEAD 2>/dev/null || echo dev)-$recipe"
if wants server && ! have "$server"; then
  echo "build-images: throttlekit-server (static) on an empty image" >&2
  ctx="$work/server"
  rm -rf "$ctx" && mkdir -p "$ctx"
  CGO_ENABLED=0 go -C server build -trimpath -o "$ctx/throttlekit-server" ./cmd/throttlekit-server
  cp examples/policies.yaml "$ctx/policies.yaml"
  cp compose/Dockerfile "$ctx/Dockerfile"
  docker build -q -t "$server" "$ctx" >/dev/null
  rm -rf "$ctx"
fi

if wants server; then
  docker tag "$server" throttlekit/server:local
fi
# Images of older recipes are dropped, so the disk holds one of each.
docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^throttlekit/(redis|postgres|moto|server):' \
  | grep -v -e ":$recipe\$" -e "-$recipe\$" -e ':local$' | xargs -r docker rmi -f >/dev/null 2>&1 || true
for name in redis postgres moto server; do
  if wants "$name"; then
    upper="$(tr a-z A-Z <<<"$name")"
    echo "${upper}_IMAGE=${!name}"
  fi
done
