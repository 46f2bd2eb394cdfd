"""The Monitor door's asyncio client; see :class:`~throttlekit.MonitorBackend`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import Any

import grpc

from . import _grpc
from ._grpc import pb, pb_grpc
from .monitor import Denial, MonitorSnapshot, denial_from_proto, snapshot_from_proto


class AsyncMonitorBackend:
    """The ``grpc.aio`` twin of :class:`~throttlekit.MonitorBackend`."""

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
        self._stub = pb_grpc.MonitorStub(self._channel)
        self._metadata = _grpc.with_secret(None, "x-monitor-secret", secret)
        self._timeout = timeout

    async def get_snapshot(self) -> MonitorSnapshot:
        """The server's snapshot now."""
        try:
            resp = await self._stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None
        return snapshot_from_proto(resp.snapshot)

    async def watch(self, policy: str = "") -> AsyncGenerator[Denial, None]:
        """Denials of ``policy`` (``""``: every policy) as they happen; see
        :meth:`MonitorBackend.watch`."""
        call = self._stub.Watch(pb.WatchRequest(policy=policy), metadata=self._metadata)
        try:
            async for resp in call:
                yield denial_from_proto(resp.denial)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise _grpc.as_error(err) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        """Closes the channel."""
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncMonitorBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


__all__ = ["AsyncMonitorBackend"]
