#!/usr/bin/env bash
# Installs the database servers the integration tests start on loopback
# ports (the tests start and stop them; nothing is left running), and tmux
# for Lens's terminal tests. Debian's packages; needs root or sudo when
# something is missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
# Lens's tests drive the real binaries in a terminal.
command -v tmux >/dev/null || need+=(tmux)
# A Redis on a clock set to a DST change runs under libfaketime.
command -v faketime >/dev/null || need+=(faketime)
# The Python SDK's TLS tests make their certificates with it.
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "install-services: apt-get install ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start system servers where an init system runs; the
  # tests never use them: they start their own on free loopback ports.
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "install-services: redis-server and redis-cli are required and could not be installed" >&2
  exit 1
}
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || {
  echo "install-services: PostgreSQL is required and could not be installed" >&2
  exit 1
}
command -v faketime >/dev/null || {
  echo "install-services: faketime is required (a Redis on a set clock) and could not be installed" >&2
  exit 1
}
command -v tmux >/dev/null || {
  echo "install-services: tmux is required (Lens's terminal tests) and could not be installed" >&2
  exit 1
}

# moto's moto_server (PyPI) serves the DynamoDB API for the DynamoDB store's
# tests, in the project's own virtualenv, pinned.
root="$(cd "$(dirname "$0")/.." && pwd)"
MOTO_VERSION=5.2.5
venv="$root/.tools/moto"
if [[ ! -x "$venv/bin/moto_server" || "$(cat "$venv/.version" 2>/dev/null)" != "$MOTO_VERSION" ]]; then
  echo "install-services: pip install moto[server]==$MOTO_VERSION into .tools/moto" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  echo "$MOTO_VERSION" >"$venv/.version"
fi

# The ecosystem's own Python client, unmodified from PyPI and pinned: the
# conformance suite drives it against our server and Redis.
# ruff and mypy (pinned) lint the repository's Python beside it; pytest and
# the web frameworks (pinned) run the 0.5 compatibility suite on it too.
PYCLIENT_PINS="throttlekit-py[redis]==0.5.1 ruff==0.8.4 mypy==1.13.0 pytest==8.3.4 pytest-asyncio==0.25.0 httpx==0.28.1 fastapi==0.115.6 starlette==0.41.3 flask==3.1.0 django==5.1.4"
pyclient="$root/.tools/pyclient"
if [[ ! -x "$pyclient/bin/python" || "$(cat "$pyclient/.version" 2>/dev/null)" != "$PYCLIENT_PINS" ]]; then
  echo "install-services: pip install $PYCLIENT_PINS into .tools/pyclient" >&2
  python3 -m venv "$pyclient"
  # shellcheck disable=SC2086 # the pins are separate arguments
  "$pyclient/bin/pip" install -q $PYCLIENT_PINS
  echo "$PYCLIENT_PINS" >"$pyclient/.version"
fi
