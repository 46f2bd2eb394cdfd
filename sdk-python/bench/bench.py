"""Per-call cost of the Python client, as ratios against baselines measured in the same run.

    python bench.py ours TARGET REDIS_URL    # ServiceBackend vs the raw stub; RedisBackend vs raw EVALSHA
    python bench.py pypi TARGET REDIS_URL    # the same calls through whichever throttlekit is installed

Prints one JSON object of calls per second; scripts/bench-python.sh runs both and makes the table."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

N = 3000
ROUNDS = 3


def rate(fn: Callable[[int], Any]) -> float:
    """Best of ROUNDS runs of N calls, in calls per second (the best run is the least disturbed)."""
    for i in range(200):
        fn(i)
    best = 0.0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(N):
            fn(i)
        best = max(best, N / (time.perf_counter() - start))
    return best


def main() -> None:
    mode, target, redis_url = sys.argv[1:4]
    import redis

    from throttlekit import Gcra, RedisBackend, ServiceBackend

    client = redis.Redis.from_url(redis_url)
    out: dict[str, float] = {}
    with ServiceBackend(target) as rl:
        out["service_check"] = rate(lambda i: rl.check("bench", f"k{i % 100}"))
    if mode == "ours":
        # The same call with no deadline, as the 0.5 client makes it (ours bounds every call by default).
        with ServiceBackend(target, timeout=None) as rl:
            out["service_check_nodeadline"] = rate(lambda i: rl.check("bench", f"k{i % 100}"))
    door = RedisBackend(client, Gcra(limit=10**9, period_ms=1000, burst=10**9), prefix=f"bench-{mode}")
    out["redis_check"] = rate(lambda i: door.check(f"k{i % 100}"))
    if mode == "ours":
        import grpc

        from throttlekit import _lua
        from throttlekit.v1 import throttlekit_pb2 as pb
        from throttlekit.v1 import throttlekit_pb2_grpc as pb_grpc

        channel = grpc.insecure_channel(target)
        stub = pb_grpc.RateLimiterStub(channel)
        out["raw_stub_check"] = rate(lambda i: stub.Check(pb.CheckRequest(policy="bench", key=f"k{i % 100}", cost=1)))
        channel.close()
        s = _lua.script("gcra", "check")
        args = ["0", "1000", str(10**9), str(10**9), "1"]
        out["raw_evalsha"] = rate(lambda i: client.evalsha(s.sha1, 1, f"bench-raw:k{i % 100}", *args))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
