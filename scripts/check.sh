#!/usr/bin/env bash
# The quick check for the edit-test loop: formatting (gofmt, goimports),
# go vet and staticcheck on every module, the Go unit tests that need no
# store service (-short; the SDK's start a real server process they build),
# and ruff on the Python SDK. Seconds once the build cache is warm; it
# installs nothing but the pinned Go tools (scripts/install-tools.sh).
# scripts/test.sh is the whole suite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
modules=(. server conformance examples bench)
timings=()
step() { # step NAME COMMAND...: run, time, remember
  local name="$1" began=$SECONDS
  shift
  printf '== %s\n' "$name"
  "$@"
  timings+=("$((SECONDS - began))s  $name")
}

[[ -x .tools/bin/goimports && -x .tools/bin/staticcheck ]] || ./scripts/install-tools.sh
gofiles() { git ls-files '*.go' | grep -v '/gen/'; }
format() {
  local bad
  bad="$(gofiles | xargs gofmt -l; gofiles | xargs goimports -local github.com/throttlekit/throttlekit-go -l)"
  if [[ -n "$bad" ]]; then
    echo "check: run 'make fmt' (gofmt and goimports -local github.com/throttlekit/throttlekit-go) on:" >&2
    sort -u <<<"$bad" >&2
    return 1
  fi
}
vet() { for m in "${modules[@]}"; do (cd "$m" && go vet ./... && staticcheck ./...); done; }
unit() { for m in . server examples; do (cd "$m" && go test -short -count=1 ./... | grep -v 'no test files'); done; }
ruff() {
  if [[ -x .tools/pysdk/bin/ruff ]]; then
    (cd sdk-python && ../.tools/pysdk/bin/ruff check . && ../.tools/pysdk/bin/ruff format --check .)
  else
    echo "check: NOTE: .tools/pysdk is not installed (scripts/install-pysdk.sh); ruff was not run" >&2
  fi
}
step "format (gofmt, goimports)" format
step "go vet, staticcheck" vet
step "unit tests (-short)" unit
step "ruff" ruff
printf '\nquick check passed; the steps took:\n'
printf '  %s\n' "${timings[@]}"
