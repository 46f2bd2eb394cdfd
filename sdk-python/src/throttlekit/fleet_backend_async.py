"""The Fleet door's asyncio client; see :class:`~throttlekit.FleetBackend`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from . import _grpc
from ._grpc import pb_grpc
from .decision import Decision
from .errors import ThrottleKitError
from .fleet import MAX_ROUNDS, Credits, Lease, lease_from_proto
from .fleet_backend import reserve_request


class AsyncFleetBackend:
    """The ``grpc.aio`` twin of :class:`~throttlekit.FleetBackend`."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        secret: str | None = None,
        timeout: float | None = 5.0,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self._channel = _grpc.aio_channel(target, credentials, options)
        self._stub = pb_grpc.FleetStub(self._channel)
        self._metadata = _grpc.with_secret(None, "x-fleet-secret", secret)
        self._timeout = timeout

    async def reserve(
        self, policy: str, *, domain: str = "", wants: int = 1, has: int = 0, used: int = 0, axis: str = "rate"
    ) -> Lease:
        """See :meth:`FleetBackend.reserve`."""
        req = reserve_request(policy, domain, wants, has, used, axis)
        try:
            resp = await self._stub.Reserve(req, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None
        return lease_from_proto(resp.lease)

    def leased(
        self, policy: str, *, domain: str = "", batch: int = 1, window_coupled: bool = True
    ) -> AsyncLeasedLimiter:
        """An :class:`AsyncLeasedLimiter`; see :meth:`FleetBackend.leased`."""
        return AsyncLeasedLimiter(self, policy, domain=domain, batch=batch, window_coupled=window_coupled)

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncFleetBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncLeasedLimiter:
    """The asyncio twin of :class:`~throttlekit.LeasedLimiter`; one refresh at a time per limiter."""

    def __init__(
        self,
        backend: AsyncFleetBackend,
        policy: str,
        *,
        domain: str = "",
        batch: int = 1,
        window_coupled: bool = True,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._backend = backend
        self._policy = policy
        self._domain = domain
        self._batch = batch
        self._credits = Credits(window_coupled)
        self._lock = asyncio.Lock()

    @property
    def credits(self) -> int:
        return self._credits.held

    async def check(self, cost: int = 1, *, now: int | None = None) -> Decision:
        """See :meth:`LeasedLimiter.check`."""
        cost = max(_grpc.check_units("cost", cost), 1)
        async with self._lock:
            for _ in range(MAX_ROUNDS):
                d = self._credits.spend(cost, now)
                if d is None:
                    lease = await self._backend.reserve(self._policy, domain=self._domain, wants=max(self._batch, cost))
                    d = self._credits.grant(lease)
                if d is not None:
                    return d
        raise ThrottleKitError(f"no lease covered a request of cost {cost} in {MAX_ROUNDS} rounds")


__all__ = ["AsyncFleetBackend", "AsyncLeasedLimiter"]
