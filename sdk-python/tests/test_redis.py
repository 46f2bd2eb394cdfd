"""The direct door on a real Redis: the golden vectors and every THROTTLEKIT_VECTORS file through the
sync and async backends, peek and forecast equal to the server's, one budget shared by this door, the
Go server and the ecosystem's PyPI client, corrupt keys, and the EVAL fallback."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import pathlib
import subprocess
import time
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio

from throttlekit import (
    AsyncRedisBackend,
    Decision,
    FixedWindow,
    Gcra,
    OperationNotSupportedError,
    RedisBackend,
    ServiceBackend,
    SlidingWindow,
    SlidingWindowLog,
    Strategy,
    TokenBucket,
    TokenBudget,
    from_spec,
)

from .conftest import ROOT, VECTORS, StartServer


def _vector_files() -> list[pathlib.Path]:
    # Our quota vectors: absolute instants across calendar and DST boundaries.
    files = [VECTORS, ROOT / "conformance" / "testdata" / "quota-vectors.json"]
    files += [pathlib.Path(p) for p in os.environ.get("THROTTLEKIT_VECTORS", "").split(",") if p]
    return files


def _offset(doc: dict[str, Any], suite: dict[str, Any]) -> int:
    """Suites starting at now = 0 replay from a base (now = 0 means "the Redis clock" on the wire): the
    least multiple of 1000 and the suite's window, so windows stay aligned. Absolute files: 0."""
    if not any(op["now"] == 0 for s in doc["suites"] for op in s.get("ops", [])):
        return 0
    opts = (suite.get("strategy") or {}).get("options") or suite.get("options") or {}
    w = opts.get("windowMs")
    if isinstance(w, int | float) and w > 0 and float(w) == int(w):
        return 1000 * int(w) // math.gcd(1000, int(w))
    return 1000


def _suites() -> list[tuple[str, dict[str, Any], int]]:
    out = []
    for path in _vector_files():
        doc = json.loads(path.read_text())
        for s in doc["suites"]:
            if s.get("primitive", "rateLimit") == "lease":
                continue
            out.append((f"{path.name}:{s['name']}", s, _offset(doc, s)))
    assert out, "no vector suites found"
    return out


def _strategy(suite: dict[str, Any]) -> Any:
    if suite.get("strategy"):
        return from_spec(suite["strategy"]["kind"], suite["strategy"]["options"])
    return from_spec("tokenBudget", suite["options"])


def _expect(op: dict[str, Any], offset: int) -> Decision:
    e = op["expect"]
    return Decision(e["allowed"], e["limit"], e["remaining"], e["resetAt"] + offset, e["retryAfterMs"])


@pytest.mark.parametrize(("name", "suite", "offset"), _suites(), ids=lambda v: v if isinstance(v, str) else "")
def test_vectors_sync(name: str, suite: dict[str, Any], offset: int, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    door = RedisBackend(client, _strategy(suite), prefix=f"vec-{uuid.uuid4().hex}")
    assert suite["ops"], name
    for i, op in enumerate(suite["ops"]):
        got = door.check(suite.get("key", "k"), op.get("cost", op.get("tokens", 1)), now=op["now"] + offset)
        assert got == _expect(op, offset), f"{name} op {i}"


@pytest.mark.parametrize(("name", "suite", "offset"), _suites(), ids=lambda v: v if isinstance(v, str) else "")
async def test_vectors_async(name: str, suite: dict[str, Any], offset: int, redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    door = AsyncRedisBackend(client, _strategy(suite), prefix=f"vec-{uuid.uuid4().hex}")
    for i, op in enumerate(suite["ops"]):
        got = await door.check(suite.get("key", "k"), op.get("cost", op.get("tokens", 1)), now=op["now"] + offset)
        assert got == _expect(op, offset), f"{name} op {i}"
    await client.aclose()


# Ten-year windows: nothing a peek reports moves while the test runs.
SHARED_POLICIES = """version: 1
limiters:
  gcra: { strategy: gcra, limit: 5, period: 3650d, burst: 5, prefix: py-gcra }
  fixed: { strategy: fixedWindow, limit: 5, period: 3650d, prefix: py-fixed }
  sliding: { strategy: slidingWindow, limit: 5, period: 3650d, buckets: 10, prefix: py-sliding }
  log: { strategy: slidingWindowLog, limit: 5, period: 3650d, prefix: py-log }
  bucket: { strategy: tokenBucket, capacity: 5, refillPerSec: 0.000001, prefix: py-bucket }
  shared: { strategy: gcra, limit: 30, period: 3650d, burst: 30, prefix: shared }
"""
TEN_YEARS = 3650 * 86_400_000


@pytest.mark.parametrize(
    ("policy", "strategy"),
    [
        ("gcra", Gcra(5, TEN_YEARS, 5)),
        ("fixed", FixedWindow(5, TEN_YEARS)),
        ("sliding", SlidingWindow(5, TEN_YEARS, 10)),
        ("log", SlidingWindowLog(5, TEN_YEARS)),
        ("bucket", TokenBucket(5, 0.000001)),
    ],
)
def test_peek_and_forecast_answer_as_the_server(
    policy: str, strategy: Any, redis_url: str, start_server: StartServer
) -> None:
    """At the same instants, on the same Redis key, this door's peek and forecast equal the server's
    (a test-clock build, so both answer at one instant, field for field)."""
    import grpc

    from throttlekit.v1 import throttlekit_pb2 as pb
    from throttlekit.v1 import throttlekit_pb2_grpc as pb_grpc

    srv = start_server(SHARED_POLICIES, "--redis", redis_url, test_clock=True)
    door = RedisBackend(redis.Redis.from_url(redis_url), strategy, prefix=f"py-{policy}")
    key = uuid.uuid4().hex
    channel = grpc.insecure_channel(srv.addr)
    stub = pb_grpc.RateLimiterStub(channel)
    now = 1_800_000_000_000
    for spent in range(7):
        at = [("x-throttlekit-test-now", str(now))]
        theirs = stub.Peek(pb.PeekRequest(policy=policy, key=key), metadata=at, timeout=30).decision
        ft = stub.Forecast(pb.ForecastRequest(policy=policy, key=key, cost=2), metadata=at, timeout=30).forecast
        ours, fo = door.peek(key, now=now), door.forecast(key, 2, now=now)
        assert ours == Decision(
            theirs.allowed, theirs.limit, theirs.remaining, theirs.reset_at, theirs.retry_after_ms
        ), spent
        assert (fo.spendable_now, fo.next_replenish_at, fo.full_at) == (
            ft.spendable_now,
            ft.next_replenish_at,
            ft.full_at,
        )
        door.check(key, now=now)
        now += 7_919
    channel.close()


def test_one_budget_for_every_door(redis_url: str, start_server: StartServer) -> None:
    """This door, the Go server and the ecosystem's PyPI 0.5.1 client spend one budget on one key."""
    pyclient = ROOT / ".tools" / "pyclient" / "bin" / "python"
    assert pyclient.exists(), "the PyPI client venv is installed by the test command (scripts/install-services.sh)"
    srv = start_server(SHARED_POLICIES, "--redis", redis_url)
    key = uuid.uuid4().hex
    door = RedisBackend(redis.Redis.from_url(redis_url), Gcra(30, TEN_YEARS, 30), prefix="shared")
    script = (
        "import sys, redis\n"
        "from throttlekit import RedisBackend, Gcra\n"
        f"b = RedisBackend(redis.Redis.from_url({redis_url!r}), Gcra(limit=30, period_ms={TEN_YEARS}, burst=30),"
        " prefix='shared')\n"
        f"print(sum(b.check({key!r}).allowed for _ in range(15)))\n"
    )
    allowed = 0
    with ServiceBackend(srv.addr) as rl:
        for _ in range(3):
            allowed += sum(door.check(key).allowed for _ in range(5))
            allowed += sum(rl.check("shared", key).allowed for _ in range(5))
            out = subprocess.run([str(pyclient), "-c", script], capture_output=True, text=True, check=True, timeout=120)
            allowed += int(out.stdout.strip())
    assert allowed == 30, f"{allowed} admitted by three doors on one budget of 30"


def test_corrupt_and_foreign_keys_reset(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    cases: list[tuple[Strategy, str]] = [
        (Gcra(5, 60_000), "inf"),  # a tat that would deny for ever
        (FixedWindow(5, 60_000), "garbage"),  # a string where a hash belongs
        (SlidingWindowLog(5, 60_000), "set"),  # a set where a sorted set belongs
    ]
    for strategy, poison in cases:
        door = RedisBackend(client, strategy, prefix=f"poison-{uuid.uuid4().hex}")
        if poison == "set":
            client.sadd(door.key("k"), "x")
        else:
            client.set(door.key("k"), poison)
        assert door.peek("k").remaining == 5
        d = door.check("k")
        assert d.allowed and d.remaining == 4, (strategy, d)


def test_eval_fallback_after_script_flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    door = RedisBackend(client, FixedWindow(3, 60_000), prefix=f"flush-{uuid.uuid4().hex}")
    client.script_flush()
    assert door.check("k").allowed
    assert door.peek("k").remaining == 2


class Wrapped:
    """Not redis-py: any object with evalsha and eval serves."""

    def __init__(self, inner: redis.Redis) -> None:
        self.inner, self.calls = inner, 0

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.calls += 1
        return self.inner.evalsha(sha, numkeys, *keys_and_args)

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.calls += 1
        return self.inner.eval(script, numkeys, *keys_and_args)


def test_any_client_with_evalsha(redis_url: str) -> None:
    w = Wrapped(redis.Redis.from_url(redis_url))
    door = RedisBackend(w, TokenBudget(100, 60_000), prefix=f"any-{uuid.uuid4().hex}")
    assert door.check("k", 60).remaining == 40
    assert door.check("k", 60).allowed and not door.check("k", 1).allowed
    assert w.calls >= 3
    with pytest.raises(OperationNotSupportedError):
        door.peek("k")


def test_bad_requests(redis_url: str) -> None:
    door = RedisBackend(redis.Redis.from_url(redis_url), Gcra(5, 60_000))
    with pytest.raises(ValueError, match="cost"):
        door.check("k", -1)
    with pytest.raises(ValueError, match="key"):
        door.check("")
    with pytest.raises(ValueError, match="now"):
        door.check("k", now=-5)
    assert door.key("k") == "k" and RedisBackend(door._client, Gcra(1, 1), prefix="p").key("k") == "p:k"


def test_key_hash_shares_a_hashing_policys_budget(
    redis_url: str, start_server: StartServer, tmp_path: pathlib.Path
) -> None:
    """With the server's --key-hash-secret, this door spends a keyHash: sha256 policy's budget, and
    neither door writes the raw key to Redis."""
    secret = tmp_path / "hash.secret"
    secret.write_text("pepper\n")
    policies = "version: 1\nlimiters:\n  hashed: { strategy: gcra, limit: 6, period: 1h, burst: 6, keyHash: sha256 }\n"
    srv = start_server(policies, "--redis", redis_url, "--key-hash-secret-file", str(secret))
    client = redis.Redis.from_url(redis_url)
    key = f"user-{uuid.uuid4().hex}@example.com"
    door = RedisBackend(client, Gcra(6, 3_600_000, 6), prefix="hashed", key_hash_secret="pepper")
    with ServiceBackend(srv.addr) as rl:
        assert [rl.check("hashed", key).remaining for _ in range(2)] == [5, 4]
    assert [door.check(key).remaining for _ in range(2)] == [3, 2]
    assert door.key(key) == "hashed:" + hmac.new(b"pepper", key.encode(), hashlib.sha256).hexdigest()
    assert client.exists(door.key(key)) == 1
    assert not [k for k in client.scan_iter(match="hashed:*") if key.encode() in k]
    with pytest.raises(ValueError, match="key_hash_secret"):
        RedisBackend(client, Gcra(6, 3_600_000, 6), key_hash_secret="")


def test_own_instant_outlives_real_time(redis_url: str) -> None:
    """A key written at the caller's own instant is kept a minute (a TTL floor that never changes a
    decision), so a replay whose clock stands still is not outrun by Redis's real-time expiry; a key
    written on the Redis clock keeps the ecosystem's exact TTL."""
    client = redis.Redis.from_url(redis_url)
    door = RedisBackend(client, FixedWindow(1, 7), prefix=f"floor-{uuid.uuid4().hex}")
    at = 1_700_000_000_001  # 6 ms before its 7 ms window ends
    assert door.check("own", now=at).allowed
    time.sleep(0.05)  # far past the window's TTL in real time
    assert not door.check("own", now=at).allowed
    assert client.pttl(door.key("own")) > 50_000
    assert door.check("clock").allowed
    # At most the window's 7 ms, no floor: already gone (-2) on a slow machine.
    assert client.pttl(door.key("clock")) <= 7
