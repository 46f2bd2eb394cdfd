#!/usr/bin/env bash
# Generates the Python gRPC stubs of sdk-python from proto/ with a pinned
# grpcio-tools (its bundled protoc), into OUT (default: the repository).
# The stubs land at throttlekit/v1/, which is the proto package's own path,
# so their imports ("from throttlekit.v1 import throttlekit_pb2") resolve
# inside our package. The test command runs this into a scratch tree and
# fails when the committed stubs differ.
#
#     scripts/gen-python.sh [OUT]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root}"
GRPCIO_TOOLS_VERSION=1.71.0
venv="$root/.tools/pygen"
if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.version" 2>/dev/null)" != "$GRPCIO_TOOLS_VERSION" ]]; then
  echo "gen-python: pip install grpcio-tools==$GRPCIO_TOOLS_VERSION into .tools/pygen" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "grpcio-tools==$GRPCIO_TOOLS_VERSION"
  echo "$GRPCIO_TOOLS_VERSION" >"$venv/.version"
fi
dst="$out/sdk-python/src"
rm -rf "$dst/throttlekit/v1"
mkdir -p "$dst/throttlekit/v1"
(cd "$root/proto" && "$venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out="$dst" --pyi_out="$dst" --grpc_python_out="$dst" throttlekit/v1/throttlekit.proto)
printf '"""Generated from proto/throttlekit/v1/throttlekit.proto by scripts/gen-python.sh; do not edit."""\n' >"$dst/throttlekit/v1/__init__.py"
