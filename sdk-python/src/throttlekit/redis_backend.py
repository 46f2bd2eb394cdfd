"""The direct door: our Lua scripts run against the Redis a fleet shares, with no server between."""

from __future__ import annotations

from typing import Any, Protocol

from ._redis_common import Prepared, instant, is_noscript
from .decision import Decision, Forecast
from .strategies import Strategy


class RedisClientLike(Protocol):
    """Any client with redis-py's ``evalsha`` and ``eval`` (single node, Sentinel, Cluster)."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...


class RedisBackend:
    """Decides ``strategy`` in Redis under ``prefix:key``, on the Redis server's clock by default.

    ``check`` spends; ``peek`` and ``forecast`` read the key's state with the strategy's read-only
    script and answer exactly as the server's Peek and Forecast do. With ``key_hash_secret`` keys are
    stored as their keyed hash (HMAC-SHA256, hex), as the server stores a ``keyHash: sha256`` policy's:
    give the server's ``--key-hash-secret`` to share its budget."""

    def __init__(
        self,
        client: RedisClientLike,
        strategy: Strategy,
        *,
        prefix: str = "",
        key_hash_secret: str | bytes | None = None,
    ) -> None:
        self._client = client
        self._p = Prepared(strategy, prefix, key_hash_secret)

    @property
    def strategy(self) -> Strategy:
        return self._p.strategy

    def key(self, key: str) -> str:
        """The Redis key a request for ``key`` addresses."""
        return self._p.key(key)

    def _run(self, sha: str, body: str, key: str, args: list[str]) -> Any:
        try:
            return self._client.evalsha(sha, 1, key, *args)
        except Exception as err:
            if not is_noscript(err):
                raise
            return self._client.eval(body, 1, key, *args)

    def check(self, key: str, cost: int = 1, *, now: int | None = None) -> Decision:
        """Spends ``cost`` units (0 means 1) of ``key``'s budget; ``now=None`` uses the Redis clock."""
        k, args = self._p.key(key), self._p.check_args(cost, now)
        try:
            reply = self._run(self._p.check.sha1, self._p.check.body, k, args)
        except Exception as err:
            # A quota in a time zone on a clock a period or more off Redis's: sent again once.
            again = self._p.retry_args(err, cost, now)
            if again is None:
                raise
            reply = self._run(self._p.check.sha1, self._p.check.body, k, again)
        return Prepared.decision(reply)

    def _state(self, key: str, now: int | None) -> Any:
        return self._run(self._p.state.sha1, self._p.state.body, self._p.key(key), [instant(now)])

    def peek(self, key: str, *, now: int | None = None) -> Decision:
        """What a cost-1 request would see now, spending nothing."""
        return self._p.peek(self._state(key, now))

    def forecast(self, key: str, cost: int = 1, *, now: int | None = None) -> Forecast:
        """How many cost-sized requests fit now, and when capacity next grows and is full again."""
        return self._p.forecast(self._state(key, now), cost)


__all__ = ["RedisBackend", "RedisClientLike"]
