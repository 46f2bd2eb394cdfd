#!/usr/bin/env bash
# Runs every check and test of the repository: generated-code drift (Go and
# Python stubs, Lua copies), buf lint/format/breaking, gofmt, goimports, go vet,
# staticcheck, ruff and mypy --strict, the Go unit tests (with -race; the store
# suites on real Redis, Postgres and moto), short
# fuzz runs, the benchmarks once each (so they cannot rot), the Python SDK's
# tests, the Compose stacks, the conformance matrix on containers and the rest
# of the conformance suite against real server processes. Installs the pinned
# tools it needs into .tools/ (and Docker from Debian's packages when
# missing). Exits non-zero on the first failure, and prints the slowest steps.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
# The Go modules: the root (the lean SDK and lua/), the server, the
# conformance suite, the examples and the benchmark tool (one go.work).
modules=(. server conformance examples bench)
# Extra vector files (same shape, absolute times) are replayed through every
# store and door next to the golden ones; the repository's own hand-computed
# file keeps that path exercised. A caller's THROTTLEKIT_VECTORS is kept.
export THROTTLEKIT_VECTORS="$root/conformance/testdata/extra-vectors.json${THROTTLEKIT_VECTORS:+,$THROTTLEKIT_VECTORS}"
# Each step's time is kept; the slowest are printed at the end (and on a
# failure, up to the step that failed).
timings="$(mktemp)"
current="" began=$SECONDS
end_step() { [[ -z "$current" ]] || printf '%5ds  %s\n' "$((SECONDS - began))" "$current" >>"$timings"; }
step() { end_step; current="$*" began=$SECONDS; printf '\n== %s\n' "$*"; }
slowest() {
  end_step
  current=""
  printf '\nthe slowest steps (of %d s in all):\n' "$SECONDS"
  sort -rn "$timings" | head -8
  rm -f "$timings"
}
trap slowest EXIT

step "tools and services"
command -v go >/dev/null || { echo "test: Go 1.26+ is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "test: python3 is required" >&2; exit 1; }
./scripts/install-tools.sh
./scripts/install-services.sh

step "generated code is up to date"
./scripts/check-gen.sh

step "buf lint, format"
buf lint
buf format --diff --exit-code

step "buf breaking against the previous commit"
if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/throttlekit/v1/throttlekit.proto 2>/dev/null; then
  buf breaking --against ".git#ref=HEAD~1"
else
  echo "test: NOTE: no previous commit with the contract in this clone; buf breaking has nothing to compare" >&2
fi

step "gofmt, goimports, go vet, staticcheck"
unformatted="$(git ls-files '*.go' | grep -v '/gen/' | xargs gofmt -l; git ls-files '*.go' | grep -v '/gen/' | xargs goimports -local github.com/throttlekit/throttlekit-go -l)"
if [[ -n "$unformatted" ]]; then
  echo "test: gofmt/goimports needed (make fmt) on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
for m in "${modules[@]}"; do
  (cd "$m" && go vet ./... && staticcheck ./...)
done

step "Python: ruff, mypy --strict"
.tools/pyclient/bin/ruff check conformance/python
# ecosystem_client.py drives the PyPI 0.5.1 client (its venv); matrix_door.py
# drives ours (checked with the SDK's own venv below).
.tools/pyclient/bin/mypy --strict --ignore-missing-imports conformance/python/ecosystem_client.py

step "Python SDK: install, ruff, mypy --strict"
# The package is installed as a user would (not editable), into its own venv
# with every extra, so the tests exercise what a wheel ships.
pysdk="$root/.tools/pysdk"
./scripts/install-pysdk.sh
(cd sdk-python && "$pysdk/bin/ruff" check . && "$pysdk/bin/ruff" format --check . && "$pysdk/bin/mypy" src tests examples bench ../conformance/python/matrix_door.py)

step "server binaries every suite runs (plain and test-clock builds)"
# Built as the container image's binary is (static, paths trimmed, with its
# profile): the suites run what the image ships, and the image's build later
# finds every package compiled (a cold run otherwise compiles the server's
# dependencies once more, about a minute and a half on 2 cores).
CGO_ENABLED=0 go -C server build -trimpath -o "$root/.tools/bin/throttlekit-server" ./cmd/throttlekit-server
CGO_ENABLED=0 go -C server build -trimpath -tags throttlekit_testclock -o "$root/.tools/bin/throttlekit-server-testclock" ./cmd/throttlekit-server
export THROTTLEKIT_SERVER_BIN="$root/.tools/bin/throttlekit-server"
export THROTTLEKIT_SERVER_TESTCLOCK_BIN="$root/.tools/bin/throttlekit-server-testclock"

step "unit tests (race detector; the SDK's against real server processes)"
go test -race -count=1 ./...
(cd server && go test -race -count=1 ./...)
(cd examples && go test -race -count=1 ./...)

step "engine under FMA-capable code generation (GOAMD64=v3)"
# Go may fuse a*b+c into one FMA on such targets; the engine forbids it with
# explicit conversions, and the vectors must still match bit for bit.
if [[ "$(go env GOARCH)" == amd64 ]] && grep -qw fma /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo; then
  GOAMD64=v3 go test -count=1 ./sdk-go/engine
else
  echo "test: NOTE: this CPU cannot run GOAMD64=v3 code; the FMA build of the engine was not exercised here" >&2
fi

step "fuzz (short runs)"
# fuzz DIR TARGET PKG: a short fuzz run. Go's fuzzing coordinator can end a
# run with a bare "context deadline exceeded" when -fuzztime expires while a
# worker is busy; that (and only that, with no failing input written) is
# retried once, loudly. A real failure writes its input and fails the run.
fuzz() {
  local out
  if out="$(cd "$1" && go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-10s}" -fuzzminimizetime 5s "$3" 2>&1)"; then
    echo "$out" | tail -2
    return
  fi
  echo "$out" | grep -v '^fuzz: elapsed' | tail -20
  if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
    echo "test: NOTE: the fuzzing engine timed out without a failing input; running $2 once more" >&2
    (cd "$1" && go test -run '^$' -fuzz "^$2\$" -fuzztime "${FUZZTIME:-10s}" -fuzzminimizetime 5s "$3" 2>&1 | tail -2)
    return  # pipefail makes the subshell fail with go test, and set -e stops the run
  fi
  return 1
}
fuzz . FuzzTimeline ./sdk-go/engine
fuzz server FuzzParse ./config
# Hostile input: each door's request validation and each store's decoder of
# state it did not write (corpora committed under testdata/fuzz).
fuzz . FuzzDecodeState ./sdk-go/engine
fuzz . FuzzParseState ./sdk-go/luascripts
fuzz server FuzzRequests ./door
fuzz server FuzzDecodeItem ./store/dynstore
fuzz server FuzzDecode ./wirebound

step "benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x ./...
(cd server && go test -run '^$' -bench . -benchtime 1x ./...)

step "Python SDK tests (pytest, a real server and Redis)"
(cd sdk-python && "$pysdk/bin/pytest" -q -p no:cacheprovider)

step "the 0.5 compatibility suite on the ecosystem's throttlekit-py 0.5.1 itself"
# tests/compat uses 0.5.1's public API only; passing on 0.5.1 proves each test
# is a faithful use of it, passing above proves ours runs it unchanged.
(cd sdk-python && "$root/.tools/pyclient/bin/pytest" -q -p no:cacheprovider tests/compat)

step "compose: every file valid; the Redis stack up for real, checked, and down"
./scripts/compose-test.sh

step "conformance matrix on containers (testcontainers-go, images built here)"
./scripts/conformance.sh --stores containers

step "conformance (real server processes over gRPC)"
# The matrix (TestMatrix*) ran above on containers; the rest runs here on
# local processes.
(cd conformance && go test -count=1 -skip '^TestMatrix' ./...)

printf '\nall checks passed\n'
