#!/usr/bin/env bash
# Validates every Compose file, then brings the Redis stack up for real on
# local images and the host network (compose/redis/docker-compose.host.yml), sends
# Checks through it with the command-line client, and takes it down —
# even when a step fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/docker-up.sh
eval "$(./scripts/build-images.sh redis server | sed 's/^/export /')"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REDIS_PORT="$(port)" TK_PORT="$(port)"
export REDIS_PORT TK_PORT
for f in compose/*/docker-compose*.yml; do
  docker-compose -f "$f" config -q
  echo "compose-test: $f is valid"
done
project="tkcompose$$"
files=(-p "$project" -f compose/redis/docker-compose.host.yml)
trap 'docker-compose "${files[@]}" down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
docker-compose "${files[@]}" up -d
# Wait for the server's own health check (the image's HEALTHCHECK) to pass.
cid="$(docker-compose "${files[@]}" ps -q throttlekit)"
for _ in $(seq 120); do
  [[ "$(docker inspect -f '{{.State.Health.Status}}' "$cid")" == healthy ]] && break
  sleep 0.5
done
status="$(docker inspect -f '{{.State.Health.Status}}' "$cid")"
[[ "$status" == healthy ]] || { docker-compose "${files[@]}" logs >&2; echo "compose-test: server is $status" >&2; exit 1; }
# The command-line client exits 1 when a check of the six was denied.
go build -o "$root/.tools/bin/throttlekit" ./sdk-go/cmd/throttlekit
set +e
out="$("$root/.tools/bin/throttlekit" --addr "127.0.0.1:$TK_PORT" check api "compose-$$" 6)"
rc=$?
set -e
echo "$out"
[[ $rc == 1 && "$(grep -c '^check allowed' <<<"$out")" == 5 && "$(grep -c '^check denied' <<<"$out")" == 1 ]] \
  || { echo "compose-test: want 5 allowed then 1 denied through the stack (exit 1), got exit $rc" >&2; exit 1; }
# The decisions were made in the stack's Redis, not in the server's memory.
[[ "$(redis-cli -p "$REDIS_PORT" --raw exists "api:compose-$$")" == 1 ]] \
  || { echo "compose-test: the key is not in the stack's Redis" >&2; exit 1; }
echo "compose-test: the Redis stack served 5 allowed, 1 denied, state in its Redis"
