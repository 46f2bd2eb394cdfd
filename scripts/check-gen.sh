#!/usr/bin/env bash
# Fails when generated code differs from its sources: the Go stubs (buf
# generate), the golden vectors' copy, the Lua manifest and derived scripts
# (scripts/gen-lua.py) and the Python stubs (scripts/gen-python.sh). `make
# gen` regenerates them all.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
TZDATA_VERSION=2025.2
step() { printf '\n== %s\n' "$*"; }

step "generated code is up to date (buf generate)"
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
buf generate -o "$gen"
if ! diff -ru "$gen/sdk-go/gen" sdk-go/gen; then
  echo "test: sdk-go/gen differs from 'buf generate'; run it and commit the result" >&2
  exit 1
fi

step "golden vectors match the contract's"
# sdk-go/vectors embeds the ecosystem's oracle so that a checkout alone
# can run the suite; where the shared contract sits beside the repository
# (CI, every developer machine here), the copy must be byte-identical.
shared_vectors="$root/../shared/contract/golden-vectors.json"
if [[ -f "$shared_vectors" ]]; then
  cmp "$shared_vectors" sdk-go/vectors/golden-vectors.json
else
  echo "test: NOTE: $shared_vectors is not beside this checkout; the vector copy was not compared" >&2
fi

step "Lua copies match lua/ and its manifest (scripts/gen-lua.py)"
python3 scripts/gen-lua.py --root "$gen"
stale=0
for derived in "$gen"/lua/*.lua; do # the many-key variants it derives
  diff -u "lua/$(basename "$derived")" "$derived" || stale=1
done
if [ "$stale" = 1 ] || ! diff -u lua/manifest.json "$gen/lua/manifest.json" || ! diff -ru sdk-python/src/throttlekit/lua "$gen/sdk-python/src/throttlekit/lua"; then
  echo "test: the Lua manifest or a copy is stale; run scripts/gen-lua.py and commit the result" >&2
  exit 1
fi

step "the generator refuses a check script that answers other than through reply"
# The many-key variants swap reply for one returning values: a check that
# returned a table of its own would be copied wrong, so it must be refused.
mut="$gen/mutated"
mkdir -p "$mut/scripts" "$mut/lua"
cp scripts/gen-lua.py "$mut/scripts/"
cp lua/*.lua lua/manifest.json "$mut/lua/"
sed -i 's/^return reply(reset, 0, limit, math.max(0, limit - count), resetAt, math.ceil(resetAt - now))$/return {0, limit, 0, resetAt, 1}/' "$mut/lua/fixed_window.lua"
grep -q '^return {0, limit, 0, resetAt, 1}$' "$mut/lua/fixed_window.lua" || { echo "test: the mutation of fixed_window.lua no longer applies; update it" >&2; exit 1; }
if out="$(python3 "$mut/scripts/gen-lua.py" --root "$mut/out" 2>&1)" || [[ "$out" != *"its check must answer only with"* ]]; then
  echo "test: gen-lua.py accepted a check script that returns a table of its own: $out" >&2
  exit 1
fi
# A check script whose check on one key is not marked cannot be derived.
cp lua/fixed_window.lua "$mut/lua/"
sed -i 's/^local key = KEYS\[1\]$/local key = KEYS[1] or ""/' "$mut/lua/fixed_window.lua"
grep -q '^local key = KEYS\[1\] or ""$' "$mut/lua/fixed_window.lua" || { echo "test: the second mutation of fixed_window.lua no longer applies; update it" >&2; exit 1; }
if out="$(python3 "$mut/scripts/gen-lua.py" --root "$mut/out" 2>&1)" || [[ "$out" != *"must hold its check on one key"* ]]; then
  echo "test: gen-lua.py accepted a check script with no check on one key: $out" >&2
  exit 1
fi

step "Python stubs are up to date (scripts/gen-python.sh, pinned grpcio-tools)"
./scripts/gen-python.sh "$gen"
if ! diff -ru sdk-python/src/throttlekit/v1 "$gen/sdk-python/src/throttlekit/v1"; then
  echo "test: sdk-python's generated stubs differ from proto/; run scripts/gen-python.sh and commit the result" >&2
  exit 1
fi


step "quota vectors match their generator (scripts/gen-quota-vectors.py, pinned tzdata)"
# The zones' rules come from the pinned tzdata package, never the host's
# files (PYTHONTZPATH empty), as the Go side embeds its own.
if [[ ! -x .tools/pytz/bin/python || "$(cat .tools/pytz/.version 2>/dev/null)" != "$TZDATA_VERSION" ]]; then
  python3 -m venv .tools/pytz
  .tools/pytz/bin/pip install -q "tzdata==$TZDATA_VERSION"
  echo "$TZDATA_VERSION" >.tools/pytz/.version
fi
PYTHONTZPATH= .tools/pytz/bin/python scripts/gen-quota-vectors.py --check
