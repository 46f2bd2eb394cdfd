"""The Monitor door's synchronous client: read-only, it never affects a decision."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

import grpc

from . import _grpc
from ._grpc import pb, pb_grpc
from .monitor import Denial, MonitorPolicy, MonitorSnapshot, denial_from_proto, snapshot_from_proto


class MonitorBackend:
    """Reads a server's Monitor door::

        with MonitorBackend("localhost:50051") as mon:
            for p in mon.get_snapshot().policies:
                print(p.name, p.allowed, p.denied)

    Without a secret the server answers loopback callers only; pass ``secret`` (sent as
    ``x-monitor-secret``) and TLS ``credentials`` for a remote door. ``timeout`` (seconds) bounds
    :meth:`get_snapshot`."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        secret: str | None = None,
        timeout: float | None = 5.0,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self._channel = _grpc.channel(target, credentials, options)
        self._stub = pb_grpc.MonitorStub(self._channel)
        self._metadata = _grpc.with_secret(None, "x-monitor-secret", secret)
        self._timeout = timeout

    def get_snapshot(self) -> MonitorSnapshot:
        """The server's snapshot now."""
        try:
            resp = self._stub.GetSnapshot(pb.GetSnapshotRequest(), timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None
        return snapshot_from_proto(resp.snapshot)

    def watch(self, policy: str = "") -> Generator[Denial, None, None]:
        """Denials of ``policy`` (``""``: every policy) as they happen, until the iterator is closed or
        the stream fails (a :class:`~throttlekit.ThrottleKitError`). The server sends at most 500 a
        second per stream and drops, for a reader that falls behind, what it cannot send."""
        call = self._stub.Watch(pb.WatchRequest(policy=policy), metadata=self._metadata)
        try:
            for resp in call:
                yield denial_from_proto(resp.denial)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise _grpc.as_error(err) from None
        finally:
            call.cancel()

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> MonitorBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["Denial", "MonitorBackend", "MonitorPolicy", "MonitorSnapshot"]
