#!/usr/bin/env bash
# Runs throttlekit-server with the example policy file on 127.0.0.1:50051, on
# the memory store unless a store flag is passed. Extra arguments go to the server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v go >/dev/null || { echo "serve: Go 1.26+ is required (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$root/bin"
if [[ ! -x "$root/bin/throttlekit-server" ]]; then
  echo "serve: building throttlekit-server; the first build downloads the modules and compiles them (3 to 4 minutes on 2 cores), later ones take seconds" >&2
else
  echo "serve: building throttlekit-server" >&2
fi
go -C "$root/server" build -o "$root/bin/throttlekit-server" ./cmd/throttlekit-server
# The store is inferred: memory unless a connection flag (--redis, ...) is passed.
exec "$root/bin/throttlekit-server" --config "$root/examples/policies.yaml" --host 127.0.0.1 --port 50051 "$@"
