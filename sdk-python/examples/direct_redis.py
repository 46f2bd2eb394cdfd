"""The direct door: decide in the Redis your fleet shares, with no server. Needs the [redis] extra and
a Redis (REDIS_URL, default redis://localhost:6379)."""

from __future__ import annotations

import os

import redis

from throttlekit import Gcra, RedisBackend


def main() -> None:
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"))
    api = RedisBackend(client, Gcra(limit=100, period_ms=60_000, burst=20), prefix="prod")
    d = api.check("alice")  # on the Redis server's clock
    print(f"allowed={d.allowed} remaining={d.remaining} key={api.key('alice')}")
    print(f"peek: {api.peek('alice').remaining} left; forecast: {api.forecast('alice', 5).spendable_now} requests of 5")


if __name__ == "__main__":
    main()
