#!/usr/bin/env bash
# Python client benchmarks: ratios against baselines measured in the same run
# (see BENCHMARKS.md). Starts its own server (memory store) and redis-server on
# free loopback ports; needs what the test command installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport="$(port)"
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
rpid=$!
cfg="$(mktemp)"
printf 'version: 1\nlimiters:\n  bench: { strategy: gcra, limit: 1000000000, period: 1s }\n' >"$cfg"
go -C server build -o "$root/.tools/bin/throttlekit-server" ./cmd/throttlekit-server
out="$(mktemp)"
"$root/.tools/bin/throttlekit-server" --config "$cfg" --host 127.0.0.1 --port 0 >"$out" 2>/dev/null &
spid=$!
trap 'kill $rpid $spid 2>/dev/null; rm -f "$cfg" "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
target="$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out")"
# Two alternating runs of each client; the best figure of each is kept.
runs=()
for _ in 1 2; do
  runs+=("$(.tools/pyclient/bin/python sdk-python/bench/bench.py pypi "$target" "redis://127.0.0.1:$rport")")
  runs+=("$(.tools/pysdk/bin/python sdk-python/bench/bench.py ours "$target" "redis://127.0.0.1:$rport")")
done
python3 - "${runs[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
def best(rs):
    return {k: max(r[k] for r in rs) for k in rs[0]}
p, o = best(runs[0::2]), best(runs[1::2])
rows = [
    ("ServiceBackend.check vs the raw generated stub (calls/s, one caller)", o["service_check"], o["raw_stub_check"], "≤ 1.2× per call"),
    ("RedisBackend.check vs raw EVALSHA of the same script (calls/s, one caller)", o["redis_check"], o["raw_evalsha"], "≤ 1.2× per call"),
    ("ServiceBackend.check: ours vs PyPI throttlekit-py 0.5.1 (calls/s)", o["service_check"], p["service_check"], "not slower"),
    ("  the same, ours with no per-call deadline, as 0.5 calls (calls/s)", o["service_check_nodeadline"], p["service_check"], "not slower"),
    ("RedisBackend.check: ours vs PyPI throttlekit-py 0.5.1 (calls/s)", o["redis_check"], p["redis_check"], "not slower"),
]
print("| comparison | ours | baseline | per-call time ratio | target |")
print("|---|---|---|---|---|")
for name, ours, base, target in rows:
    print(f"| {name} | {ours:.0f}/s | {base:.0f}/s | {base / ours:.2f}× | {target} |")
PY
