#!/usr/bin/env bash
# Runs throttlekit-server on the memory store with the example policy file,
# on 127.0.0.1:50051. Extra arguments are passed to the server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v go >/dev/null || { echo "serve: Go 1.26+ is required (https://go.dev/dl)" >&2; exit 1; }
mkdir -p "$root/bin"
go -C "$root/server" build -o "$root/bin/throttlekit-server" ./cmd/throttlekit-server
exec "$root/bin/throttlekit-server" --config "$root/examples/policies.yaml" --store memory --host 127.0.0.1 --port 50051 "$@"
