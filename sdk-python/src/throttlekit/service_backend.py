"""The service door: gRPC to a ``throttlekit-server``, which computes every decision."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from . import _grpc
from ._grpc import Metadata, pb, pb_grpc
from .decision import Decision, Forecast


class Admission:
    """The answer to :meth:`ServiceBackend.admit`: a decision and, when granted on a concurrency axis,
    a slot (lease) held until released. As a context manager it releases on exit — as dropped when the
    block raised, which tells the adaptive limit that the work failed."""

    def __init__(self, backend: ServiceBackend, resp: Any) -> None:
        self._backend = backend
        self.decision: Decision = _grpc.decision(resp.decision)
        self.lease_id: str = resp.lease_id
        self.lease_expires_at: int = int(resp.lease_expires_at)
        self.binding_axis: str = resp.binding_axis
        self.policy_denied: bool = bool(resp.policy_denied)
        self._released = False
        self._reclaimed = False
        self._lock = threading.Lock()

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def held(self) -> bool:
        """Whether a slot is held now: granted, not released, not reclaimed by the server."""
        return bool(self.lease_id) and not self._released and not self._reclaimed

    @property
    def reclaimed(self) -> bool:
        """The server reclaimed the slot (it was not renewed in time); treat the work as dropped."""
        return self._reclaimed

    def _mark_reclaimed(self) -> None:
        with self._lock:
            self._reclaimed = True

    def release(self, *, dropped: bool = False) -> None:
        """Returns the slot; idempotent, and a no-op when no slot is held."""
        with self._lock:
            if self._released or not self.lease_id:
                return
            self._released = True
        self._backend._forget(self.lease_id)
        if not self._reclaimed:
            self._backend._release(self.lease_id, dropped)

    def __enter__(self) -> Admission:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release(dropped=exc_type is not None)

    def __repr__(self) -> str:
        return (
            f"Admission(allowed={self.allowed}, held={self.held}, "
            f"binding_axis={self.binding_axis!r}, decision={self.decision})"
        )


class ServiceBackend:
    """A synchronous client of ``throttlekit-server``.

    ``credentials`` are gRPC channel credentials for TLS or mTLS (default: an insecure channel, for
    loopback and development). ``timeout`` (seconds) bounds every call unless the call passes its own;
    a call past it raises :class:`~throttlekit.ServiceUnavailableError`. Admissions made with
    ``heartbeat=True`` are renewed every ``heartbeat_interval`` seconds by one background thread that
    batches all of them in one call. ``metadata`` (pairs, or a function returning pairs) is sent with
    every call; ``secret`` is the decision door's secret (``--secret`` on the server), sent as
    ``x-throttlekit-secret``."""

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
            grpc.secure_channel(target, credentials, opts)
            if credentials is not None
            else grpc.insecure_channel(target, opts)
        )
        self._stub = pb_grpc.RateLimiterStub(self._channel)
        self._timeout = timeout
        self._metadata = _grpc.with_secret(metadata, "x-throttlekit-secret", secret)
        self._interval = heartbeat_interval
        self._leases: dict[str, Admission] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._beater: threading.Thread | None = None

    def __enter__(self) -> ServiceBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stops the heartbeat and closes the channel; open admissions are left to the server's ttl."""
        self._closed.set()
        if self._beater is not None:
            self._beater.join()
        self._channel.close()

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            md = self._metadata() if callable(self._metadata) else self._metadata
            return method(request, timeout=self._timeout if timeout is None else timeout, metadata=md)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None

    def check(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Decision:
        """Spends ``cost`` units (0 means 1) of ``key``'s budget under ``policy``."""
        req = pb.CheckRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))
        return _grpc.decision(self._call(self._stub.Check, req, timeout).decision)

    def check_many(
        self, policy: str, keys: Sequence[str], cost: int = 1, *, timeout: float | None = None
    ) -> list[Decision]:
        """Spends ``cost`` on every key at one instant; decisions in the order of ``keys``."""
        req = pb.CheckManyRequest(policy=policy, keys=list(keys), cost=_grpc.check_units("cost", cost))
        return [_grpc.decision(d) for d in self._call(self._stub.CheckMany, req, timeout).decisions]

    def peek(self, policy: str, key: str, *, timeout: float | None = None) -> Decision:
        """What a cost-1 request would see now, spending nothing."""
        req = pb.PeekRequest(policy=policy, key=key)
        return _grpc.decision(self._call(self._stub.Peek, req, timeout).decision)

    def forecast(self, policy: str, key: str, cost: int = 1, *, timeout: float | None = None) -> Forecast:
        """How many cost-sized requests fit now, and when capacity next grows and is full again."""
        req = pb.ForecastRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))
        return _grpc.forecast(self._call(self._stub.Forecast, req, timeout).forecast)

    def debit(self, policy: str, key: str, tokens: int = 1, *, timeout: float | None = None) -> Decision:
        """Meters ``tokens`` after the fact against a token budget."""
        req = pb.DebitRequest(policy=policy, key=key, tokens=_grpc.check_units("tokens", tokens))
        return _grpc.decision(self._call(self._stub.Debit, req, timeout).decision)

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
        req = _grpc.admit_request(policy, key, cost, hold, value)
        a = Admission(self, self._call(self._stub.Admit, req, timeout))
        if heartbeat and a.held:
            self._track(a)
        return a

    def heartbeat(self, lease_ids: Sequence[str], *, timeout: float | None = None) -> tuple[list[str], list[str], int]:
        """Renews leases by hand: returns (live ids, reclaimed ids, next deadline in epoch ms)."""
        resp = self._call(self._stub.Heartbeat, pb.HeartbeatRequest(lease_ids=list(lease_ids)), timeout)
        return list(resp.live_ids), list(resp.reclaimed_ids), int(resp.next_deadline)

    def _release(self, lease_id: str, dropped: bool) -> None:
        self._call(self._stub.Release, pb.ReleaseRequest(lease_id=lease_id, dropped=dropped), None)

    def _track(self, a: Admission) -> None:
        with self._lock:
            self._leases[a.lease_id] = a
            if self._beater is None and not self._closed.is_set():
                self._beater = threading.Thread(target=self._beat_loop, name="throttlekit-heartbeat", daemon=True)
                self._beater.start()

    def _forget(self, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)

    def _beat_loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                ids = list(self._leases)
            if not ids:
                continue
            try:
                _, reclaimed, _ = self.heartbeat(ids)
            except Exception:  # a missed beat is retried next interval; the ttl decides
                continue
            for lease_id in reclaimed:
                with self._lock:
                    a = self._leases.pop(lease_id, None)
                if a is not None:
                    a._mark_reclaimed()


__all__ = ["Admission", "ServiceBackend"]
