"""The service door over ``grpc.aio``: the awaitable twin of :class:`~throttlekit.ServiceBackend`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from . import _grpc
from ._grpc import Metadata, pb, pb_grpc
from .decision import Decision, Forecast


class AsyncAdmission:
    """The awaitable twin of :class:`~throttlekit.Admission`; ``async with`` releases on exit."""

    def __init__(self, backend: AsyncServiceBackend, resp: Any) -> None:
        self._backend = backend
        self.decision: Decision = _grpc.decision(resp.decision)
        self.lease_id: str = resp.lease_id
        self.lease_expires_at: int = int(resp.lease_expires_at)
        self.binding_axis: str = resp.binding_axis
        self.policy_denied: bool = bool(resp.policy_denied)
        self._released = False
        self._reclaimed = False

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def held(self) -> bool:
        return bool(self.lease_id) and not self._released and not self._reclaimed

    @property
    def reclaimed(self) -> bool:
        return self._reclaimed

    async def release(self, *, dropped: bool = False) -> None:
        """Returns the slot; idempotent, and a no-op when no slot is held."""
        if self._released or not self.lease_id:
            return
        self._released = True
        self._backend._forget(self.lease_id)
        if not self._reclaimed:
            await self._backend._release(self.lease_id, dropped)

    async def __aenter__(self) -> AsyncAdmission:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release(dropped=exc_type is not None)


class AsyncServiceBackend:
    """An asyncio client of ``throttlekit-server``; see :class:`~throttlekit.ServiceBackend`."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        heartbeat_interval: float = 1.0,
        timeout: float | None = 5.0,
        options: Sequence[tuple[str, Any]] | None = None,
        metadata: Metadata | None = None,
        secret: str | None = None,
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be positive, not {heartbeat_interval}")
        opts = list(options or [])
        self._channel = (
            grpc.aio.secure_channel(target, credentials, opts)
            if credentials is not None
            else grpc.aio.insecure_channel(target, opts)
        )
        self._stub = pb_grpc.RateLimiterStub(self._channel)
        self._timeout = timeout
        self._metadata = _grpc.with_secret(metadata, "x-throttlekit-secret", secret)
        self._interval = heartbeat_interval
        self._leases: dict[str, AsyncAdmission] = {}
        self._beater: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncServiceBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
        await self._channel.close(None)

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            md = self._metadata() if callable(self._metadata) else self._metadata
            return await method(request, timeout=self._timeout if timeout is None else timeout, metadata=md)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None

    async def check(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Decision:
        req = pb.CheckRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))
        return _grpc.decision((await self._call(self._stub.Check, req, timeout)).decision)

    async def check_many(
        self, policy: str, keys: Sequence[str], cost: int = 1, *, timeout: float | None = None
    ) -> list[Decision]:
        req = pb.CheckManyRequest(policy=policy, keys=list(keys), cost=_grpc.check_units("cost", cost))
        return [_grpc.decision(d) for d in (await self._call(self._stub.CheckMany, req, timeout)).decisions]

    async def peek(self, policy: str, key: str, *, timeout: float | None = None) -> Decision:
        req = pb.PeekRequest(policy=policy, key=key)
        return _grpc.decision((await self._call(self._stub.Peek, req, timeout)).decision)

    async def forecast(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Forecast:
        req = pb.ForecastRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))
        return _grpc.forecast((await self._call(self._stub.Forecast, req, timeout)).forecast)

    async def debit(self, policy: str, key: str, tokens: int = 1, *, timeout: float | None = None) -> Decision:
        req = pb.DebitRequest(policy=policy, key=key, tokens=_grpc.check_units("tokens", tokens))
        return _grpc.decision((await self._call(self._stub.Debit, req, timeout)).decision)

    async def admit(
        self,
        policy: str,
        key: str = "",
        cost: int = 1,
        *,
        hold: int = 0,
        value: int = 1,
        heartbeat: bool = False,
        timeout: float | None = None,
    ) -> AsyncAdmission:
        req = _grpc.admit_request(policy, key, cost, hold, value)
        a = AsyncAdmission(self, await self._call(self._stub.Admit, req, timeout))
        if heartbeat and a.held:
            self._leases[a.lease_id] = a
            if self._beater is None:
                self._beater = asyncio.get_running_loop().create_task(self._beat_loop())
        return a

    async def heartbeat(
        self, lease_ids: Sequence[str], *, timeout: float | None = None
    ) -> tuple[list[str], list[str], int]:
        resp = await self._call(self._stub.Heartbeat, pb.HeartbeatRequest(lease_ids=list(lease_ids)), timeout)
        return list(resp.live_ids), list(resp.reclaimed_ids), int(resp.next_deadline)

    async def _release(self, lease_id: str, dropped: bool) -> None:
        await self._call(self._stub.Release, pb.ReleaseRequest(lease_id=lease_id, dropped=dropped), None)

    def _forget(self, lease_id: str) -> None:
        self._leases.pop(lease_id, None)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            ids = list(self._leases)
            if not ids:
                continue
            try:
                _, reclaimed, _ = await self.heartbeat(ids)
            except Exception:  # a missed beat is retried next interval; the ttl decides
                continue
            for lease_id in reclaimed:
                a = self._leases.pop(lease_id, None)
                if a is not None:
                    a._reclaimed = True


__all__ = ["AsyncAdmission", "AsyncServiceBackend"]
