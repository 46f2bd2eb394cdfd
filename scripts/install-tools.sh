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
PROTOC_GEN_GO_VTPROTO_VERSION=v0.6.1-0.20240319094008-0393e58bdf10
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

# buf ships prebuilt on npm (its @bufbuild/buf package, one binary per
# platform): seconds, where building it from source takes minutes. Without
# npm, or on a platform it has no binary for, it is built from source.
install_buf() {
  local stamp="$GOBIN/.buf.version" want="buf@$BUF_VERSION"
  if [[ -x "$GOBIN/buf" && -f "$stamp" && "$(cat "$stamp")" == "$want"* ]]; then
    return
  fi
  local os arch dir="$root/.tools/npm-buf"
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="" ;; esac
  if command -v npm >/dev/null && [[ -n "$arch" ]]; then
    echo "install-tools: npm install @bufbuild/buf@${BUF_VERSION#v} (prebuilt)" >&2
    if npm install --silent --no-audit --no-fund --prefix "$dir" "@bufbuild/buf@${BUF_VERSION#v}" >&2 &&
      [[ -x "$dir/node_modules/@bufbuild/buf-$os-$arch/bin/buf" ]]; then
      ln -sf "$dir/node_modules/@bufbuild/buf-$os-$arch/bin/buf" "$GOBIN/buf"
      echo "$want (npm)" >"$stamp"
      return
    fi
    echo "install-tools: no prebuilt buf for $os-$arch; building it from source" >&2
  fi
  echo "install-tools: go install github.com/bufbuild/buf/cmd/buf@$BUF_VERSION" >&2
  go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
  echo "$want" >"$stamp"
}
install_buf
install protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
install protoc-gen-go-vtproto "github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$PROTOC_GEN_GO_VTPROTO_VERSION"
install staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
install goimports "golang.org/x/tools/cmd/goimports@$GOIMPORTS_VERSION"
