#!/usr/bin/env bash
# Installs the pinned build tools into .tools/bin (never the user's GOBIN), so a
# fresh machine and CI build with exactly the versions the generated code came from.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export GOBIN="$root/.tools/bin"
mkdir -p "$GOBIN"

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
STATICCHECK_VERSION=v0.8.2
GOIMPORTS_VERSION=v0.45.0

install() { # install <binary> <module/path@version>
  local bin="$1" pkg="$2" stamp="$GOBIN/.$1.version"
  if [[ -x "$GOBIN/$bin" && -f "$stamp" && "$(cat "$stamp")" == "$pkg" ]]; then
    return
  fi
  echo "install-tools: go install $pkg" >&2
  go install "$pkg"
  echo "$pkg" >"$stamp"
}

install buf "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
install protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
install staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
install goimports "golang.org/x/tools/cmd/goimports@$GOIMPORTS_VERSION"
