"""The Python columns of the conformance matrix: replays vector suites through our throttlekit-py,
either its service door (ServiceBackend, the instant of each op sent as test-clock metadata) or its
direct Redis door (RedisBackend with an explicit now; a RedisCluster client for a cluster).

Reads a job as JSON on stdin and writes, as JSON on stdout, each suite's decisions as
[allowed, limit, remaining, resetAt, retryAfterMs] lists. The Go matrix compares them."""

from __future__ import annotations

import json
import sys
from typing import Any


def service(job: dict[str, Any]) -> list[list[list[int]]]:
    from throttlekit import ServiceBackend

    now = [0]
    out: list[list[list[int]]] = []
    with ServiceBackend(
        job["target"],
        metadata=lambda: [("x-throttlekit-test-now", str(now[0]))],
        timeout=30,
    ) as rl:
        for s in job["suites"]:
            got = []
            for op in s["ops"]:
                now[0] = op["now"]
                if s["kind"] == "tokenBudget":
                    d = rl.debit(s["policy"], s["key"], op["units"])
                else:
                    d = rl.check(s["policy"], s["key"], op["units"])
                got.append(
                    [int(d.allowed), d.limit, d.remaining, d.reset_at, d.retry_after_ms]
                )
            out.append(got)
    return out


def direct(job: dict[str, Any]) -> list[list[list[int]]]:
    import redis
    import redis.cluster

    from throttlekit import RedisBackend, from_spec

    host, port = job["redis_addrs"][0].rsplit(":", 1)
    client: Any
    if job["cluster"]:
        client = redis.cluster.RedisCluster(host=host, port=int(port))
    else:
        client = redis.Redis(host=host, port=int(port))
    out: list[list[list[int]]] = []
    for s in job["suites"]:
        door = RedisBackend(
            client, from_spec(s["kind"], s["options"]), prefix=s["policy"]
        )
        got = []
        for op in s["ops"]:
            d = door.check(s["key"], op["units"], now=op["now"])
            got.append(
                [int(d.allowed), d.limit, d.remaining, d.reset_at, d.retry_after_ms]
            )
        out.append(got)
    client.close()
    return out


def spend(job: dict[str, Any]) -> int:
    """Live check: spends job["n"] units one by one on the real clock and returns how many were
    admitted, through the service door (job["target"]) or, with "redis_addrs", the direct door."""
    if job.get("redis_addrs"):
        import redis
        import redis.cluster

        from throttlekit import Gcra, RedisBackend

        host, port = job["redis_addrs"][0].rsplit(":", 1)
        client: Any = (
            redis.cluster.RedisCluster(host=host, port=int(port))
            if job["cluster"]
            else redis.Redis(host=host, port=int(port))
        )
        g = job["gcra"]
        door = RedisBackend(
            client, Gcra(g["limit"], g["periodMs"], g["burst"]), prefix=job["policy"]
        )
        return sum(door.check(job["key"]).allowed for _ in range(job["n"]))
    from throttlekit import Decision, ServiceBackend

    def decided(rl: ServiceBackend) -> Decision:
        # A fail-mode answer (reset_at 0: the store did not answer) spent nothing: ask again, a little.
        for _ in range(5):
            d = rl.check(job["policy"], job["key"])
            if d.reset_at != 0:
                return d
            print("a fail-mode decision; asking again", file=sys.stderr)
        raise RuntimeError(
            "the store is not answering: five fail-mode decisions in a row"
        )

    with ServiceBackend(job["target"], timeout=30) as rl:
        return sum(decided(rl).allowed for _ in range(job["n"]))


def main() -> None:
    job = json.load(sys.stdin)
    result: Any
    if job["door"] == "spend":
        result = spend(job)
    elif job["door"] == "service":
        result = service(job)
    else:
        result = direct(job)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
