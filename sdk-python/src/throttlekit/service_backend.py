"""The service door: gRPC to a ``throttlekit-server``, which computes every decision."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

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


class Admission(BaseAdmission["ServiceBackend"]):
    """The answer to :meth:`ServiceBackend.admit`: a decision and, when granted on a concurrency axis,
    a slot (lease) held until released. As a context manager it releases on exit — as dropped when the
    block raised, which tells the adaptive limit that the work failed."""

    def release(self, *, dropped: bool = False) -> None:
        """Returns the slot; idempotent, and a no-op when no slot is held."""
        if self._begin_release():
            self._backend._forget(self.lease_id)
            self._backend._release(self.lease_id, dropped)
        elif self.lease_id:
            self._backend._forget(self.lease_id)

    def __enter__(self) -> Admission:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release(dropped=exc_type is not None)


class ServiceBackend(BaseServiceBackend[Admission]):
    """A synchronous client of ``throttlekit-server``.

    ``credentials`` are gRPC channel credentials for TLS or mTLS (default: an insecure channel, for
    loopback and development). ``timeout`` (seconds) bounds every call unless the call passes its own;
    a call past it raises :class:`~throttlekit.ServiceUnavailableError`. Admissions made with
    ``heartbeat=True`` are renewed every ``heartbeat_interval`` seconds by one background thread that
    batches all of them in one call. ``metadata`` (pairs, or a function returning pairs) is sent with
    every call; ``secret`` is the decision door's secret (``--secret`` on the server), sent as
    ``x-throttlekit-secret``."""

    _admission = Admission

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
        self._channel = _grpc.channel(target, credentials, self._options)
        self._stub = pb_grpc.RateLimiterStub(self._channel)
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None

    def __enter__(self) -> ServiceBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stops the heartbeat and closes the channel; open admissions are left to the server's ttl."""
        if not self._close():
            return
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(request, **self._call_options(timeout))
        except grpc.RpcError as err:
            raise self._error(err) from None

    def check(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Decision:
        """Spends ``cost`` units (0 means 1) of ``key``'s budget under ``policy``."""
        return self._decision(self._call(self._stub.Check, self._check_request(policy, key, cost), timeout))

    def check_many(
        self, policy: str, keys: Sequence[str], cost: int = 1, *, timeout: float | None = None
    ) -> list[Decision]:
        """Spends ``cost`` on every key at one instant; decisions in the order of ``keys``."""
        req = self._check_many_request(policy, keys, cost)
        return self._decisions(self._call(self._stub.CheckMany, req, timeout))

    def peek(self, policy: str, key: str, *, timeout: float | None = None) -> Decision:
        """What a cost-1 request would see now, spending nothing."""
        return self._decision(self._call(self._stub.Peek, self._peek_request(policy, key), timeout))

    def forecast(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Forecast:
        """How many cost-sized requests fit now, and when capacity next grows and is full again."""
        return self._forecast(self._call(self._stub.Forecast, self._forecast_request(policy, key, cost), timeout))

    def debit(self, policy: str, key: str, tokens: int = 1, *, timeout: float | None = None) -> Decision:
        """Meters ``tokens`` after the fact against a token budget."""
        return self._decision(self._call(self._stub.Debit, self._debit_request(policy, key, tokens), timeout))

    def admit(
        self,
        policy: str,
        key: str = "",
        cost: int = 1,
        *,
        hold: int = 0,
        value: int = 1,
        heartbeat: bool = False,
        timeout: float | None = None,
    ) -> Admission:
        """Asks a concurrency or unified policy for admission; see :class:`Admission`."""
        resp = self._call(self._stub.Admit, self._admit_request(policy, key, cost, hold, value), timeout)
        a, start = self._admitted(resp, heartbeat)
        if start:
            self._beater = threading.Thread(target=self._beat_loop, name="throttlekit-heartbeat", daemon=True)
            self._beater.start()
        return a

    def heartbeat(self, lease_ids: Sequence[str], *, timeout: float | None = None) -> HeartbeatResult:
        """Renews leases by hand (the ones admitted with ``heartbeat=True`` are renewed for you)."""
        return self._heartbeat_result(self._call(self._stub.Heartbeat, self._heartbeat_request(lease_ids), timeout))

    def _release(self, lease_id: str, dropped: bool) -> None:
        self._call(self._stub.Release, self._release_request(lease_id, dropped), None)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self._interval):
            ids = self._lease_ids()
            if not ids:
                continue
            try:
                self._renewed(self.heartbeat(ids))
            except Exception:  # a missed beat is retried next interval; the ttl decides
                continue


__all__ = [
    "Admission",
    "HeartbeatResult",
    "InvalidRequestError",
    "OperationNotSupportedError",
    "PolicyNotFoundError",
    "ServiceBackend",
    "ServiceUnavailableError",
    "ThrottleKitError",
    "UnauthenticatedError",
]
