"""The direct door for ``redis.asyncio`` (or any client with awaitable ``evalsha``/``eval``)."""

from __future__ import annotations

from typing import Any, Protocol

from ._redis_common import Prepared, instant, is_noscript
from .decision import Decision, Forecast
from .strategies import Strategy


class AsyncRedisClientLike(Protocol):
    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    async def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...


class AsyncRedisBackend:
    """The awaitable twin of :class:`~throttlekit.RedisBackend`."""

    def __init__(
        self,
        client: AsyncRedisClientLike,
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
        return self._p.key(key)

    async def _run(self, sha: str, body: str, key: str, args: list[str]) -> Any:
        try:
            return await self._client.evalsha(sha, 1, key, *args)
        except Exception as err:
            if not is_noscript(err):
                raise
            return await self._client.eval(body, 1, key, *args)

    async def check(self, key: str, cost: int = 1, *, now: int | None = None) -> Decision:
        k, args = self._p.key(key), self._p.check_args(cost, now)
        try:
            reply = await self._run(self._p.check.sha1, self._p.check.body, k, args)
        except Exception as err:
            again = self._p.retry_args(err, cost, now)
            if again is None:
                raise
            reply = await self._run(self._p.check.sha1, self._p.check.body, k, again)
        return Prepared.decision(reply)

    async def _state(self, key: str, now: int | None) -> Any:
        return await self._run(self._p.state.sha1, self._p.state.body, self._p.key(key), [instant(now)])

    async def peek(self, key: str, *, now: int | None = None) -> Decision:
        return self._p.peek(await self._state(key, now))

    async def forecast(self, key: str, cost: int = 1, *, now: int | None = None) -> Forecast:
        return self._p.forecast(await self._state(key, now), cost)


__all__ = ["AsyncRedisBackend", "AsyncRedisClientLike"]
