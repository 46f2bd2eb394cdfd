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
from ._grpc import Metadata, pb_grpc
from ._service import BaseAdmission, BaseServiceBackend, HeartbeatResult
from .decision import Decision, Forecast
from .errors import (
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceUnavailableError,
    ThrottleKitError,
    UnauthenticatedError,
)


class AsyncAdmission(BaseAdmission["AsyncServiceBackend"]):
    """The awaitable twin of :class:`~throttlekit.Admission`; ``async with`` releases on exit."""

    async def release(self, *, dropped: bool = False) -> None:
        """Returns the slot; idempotent, and a no-op when no slot is held."""
        if self._begin_release():
            self._backend._forget(self.lease_id)
            await self._backend._release(self.lease_id, dropped)
        elif self.lease_id:
            self._backend._forget(self.lease_id)

    async def __aenter__(self) -> AsyncAdmission:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release(dropped=exc_type is not None)


class AsyncServiceBackend(BaseServiceBackend[AsyncAdmission]):
    """An asyncio client of ``throttlekit-server``; see :class:`~throttlekit.ServiceBackend`. Close it
    with ``await backend.aclose()`` (or ``close()``, the same) or ``async with``."""

    _admission = AsyncAdmission

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
        super().__init__(
            heartbeat_interval=heartbeat_interval, timeout=timeout, options=options, metadata=metadata, secret=secret
        )
        self._channel = _grpc.aio_channel(target, credentials, self._options)
        self._stub = pb_grpc.RateLimiterStub(self._channel)
        self._beater: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncServiceBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops the heartbeat and closes the channel; open admissions are left to the server's ttl."""
        if not self._close():
            return
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
        await self._channel.close(None)

    close = aclose

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return await method(request, **self._call_options(timeout))
        except grpc.RpcError as err:
            raise self._error(err) from None

    async def check(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Decision:
        return self._decision(await self._call(self._stub.Check, self._check_request(policy, key, cost), timeout))

    async def check_many(
        self, policy: str, keys: Sequence[str], cost: int = 1, *, timeout: float | None = None
    ) -> list[Decision]:
        req = self._check_many_request(policy, keys, cost)
        return self._decisions(await self._call(self._stub.CheckMany, req, timeout))

    async def peek(self, policy: str, key: str, *, timeout: float | None = None) -> Decision:
        return self._decision(await self._call(self._stub.Peek, self._peek_request(policy, key), timeout))

    async def forecast(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Forecast:
        req = self._forecast_request(policy, key, cost)
        return self._forecast(await self._call(self._stub.Forecast, req, timeout))

    async def debit(self, policy: str, key: str, tokens: int = 1, *, timeout: float | None = None) -> Decision:
        return self._decision(await self._call(self._stub.Debit, self._debit_request(policy, key, tokens), timeout))

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
        resp = await self._call(self._stub.Admit, self._admit_request(policy, key, cost, hold, value), timeout)
        a, start = self._admitted(resp, heartbeat)
        if start:
            self._beater = asyncio.get_running_loop().create_task(self._beat_loop())
        return a

    async def heartbeat(self, lease_ids: Sequence[str], *, timeout: float | None = None) -> HeartbeatResult:
        req = self._heartbeat_request(lease_ids)
        return self._heartbeat_result(await self._call(self._stub.Heartbeat, req, timeout))

    async def _release(self, lease_id: str, dropped: bool) -> None:
        await self._call(self._stub.Release, self._release_request(lease_id, dropped), None)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            ids = self._lease_ids()
            if not ids:
                continue
            try:
                self._renewed(await self.heartbeat(ids))
            except Exception:  # a missed beat is retried next interval; the ttl decides
                continue


__all__ = [
    "AsyncAdmission",
    "AsyncServiceBackend",
    "HeartbeatResult",
    "InvalidRequestError",
    "OperationNotSupportedError",
    "PolicyNotFoundError",
    "ServiceUnavailableError",
    "ThrottleKitError",
    "UnauthenticatedError",
]
