"""Everything the sync and async service backends share that is not I/O: options, metadata, the
requests each call sends and the decoding of what comes back, admissions and the set of leases the
heartbeat renews. :class:`~throttlekit.ServiceBackend` and :class:`~throttlekit.AsyncServiceBackend`
add only the calls themselves, so the two cannot drift apart."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from . import _grpc
from ._grpc import Metadata, pb
from .decision import Decision, Forecast


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """What one heartbeat renewed: the leases still live, those the server reclaimed (their work
    should be treated as dropped), and the epoch ms by which the next beat is due."""

    live_ids: tuple[str, ...]
    reclaimed_ids: tuple[str, ...]
    next_deadline: int


B = TypeVar("B")


class BaseAdmission(Generic[B]):
    """An admission's state, shared by :class:`~throttlekit.Admission` and its async twin: the
    decision and, when granted on a concurrency axis, the slot's lease. ``held`` says a slot was
    granted (and stays true once it is released, as in 0.5); ``active`` says it is held now."""

    def __init__(
        self,
        backend: B,
        decision: Decision,
        lease_id: str,
        lease_expires_at: int,
        binding_axis: str,
        policy_denied: bool,
        *,
        heartbeat: bool = False,
    ) -> None:
        self._backend = backend
        self.decision = decision
        self.lease_id = lease_id
        self.lease_expires_at = int(lease_expires_at)
        self.binding_axis = binding_axis
        self.policy_denied = bool(policy_denied)
        self.heartbeat = heartbeat
        self._released = False
        self._reclaimed = False
        self._lock = threading.Lock()

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def held(self) -> bool:
        """Whether the admission was granted a slot (one that must be released)."""
        return bool(self.lease_id)

    @property
    def active(self) -> bool:
        """Whether the slot is held now: granted, not released, not reclaimed by the server."""
        with self._lock:
            return bool(self.lease_id) and not self._released and not self._reclaimed

    @property
    def reclaimed(self) -> bool:
        """The server reclaimed the slot (it was not renewed in time); treat the work as dropped."""
        return self._reclaimed

    def _mark_reclaimed(self) -> None:
        with self._lock:
            self._reclaimed = True

    def _begin_release(self) -> bool:
        """Marks the slot released; True when the server must be told (a slot that was held, not
        released before, and not reclaimed)."""
        with self._lock:
            if self._released or not self.lease_id:
                return False
            self._released = True
            return not self._reclaimed

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(allowed={self.allowed}, held={self.held}, active={self.active}, "
            f"binding_axis={self.binding_axis!r}, decision={self.decision})"
        )


A = TypeVar("A", bound=BaseAdmission[Any])


class BaseServiceBackend(Generic[A]):
    """The non-I/O half of a service backend. ``_admission`` is the admission class it builds."""

    _admission: type[A]

    def __init__(
        self,
        *,
        heartbeat_interval: float,
        timeout: float | None,
        options: Sequence[tuple[str, Any]] | None,
        metadata: Metadata | None,
        secret: str | None,
    ) -> None:
        if not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be positive, not {heartbeat_interval}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive (or None), not {timeout}")
        self._options = list(options or [])
        self._timeout = timeout
        self._metadata = _grpc.with_secret(metadata, "x-throttlekit-secret", secret)
        self._interval = heartbeat_interval
        self._leases: dict[str, A] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._beating = False

    def _call_options(self, timeout: float | None) -> dict[str, Any]:
        md = self._metadata() if callable(self._metadata) else self._metadata
        return {"timeout": self._timeout if timeout is None else timeout, "metadata": md}

    @staticmethod
    def _error(err: grpc.RpcError) -> Exception:
        return _grpc.as_error(err)

    # Requests, one per call.
    @staticmethod
    def _check_request(policy: str, key: str, cost: int) -> Any:
        return pb.CheckRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))

    @staticmethod
    def _check_many_request(policy: str, keys: Sequence[str], cost: int) -> Any:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        return pb.CheckManyRequest(policy=policy, keys=list(keys), cost=_grpc.check_units("cost", cost))

    @staticmethod
    def _peek_request(policy: str, key: str) -> Any:
        return pb.PeekRequest(policy=policy, key=key)

    @staticmethod
    def _forecast_request(policy: str, key: str, cost: int) -> Any:
        return pb.ForecastRequest(policy=policy, key=key, cost=_grpc.check_units("cost", cost))

    @staticmethod
    def _debit_request(policy: str, key: str, tokens: int) -> Any:
        return pb.DebitRequest(policy=policy, key=key, tokens=_grpc.check_units("tokens", tokens))

    @staticmethod
    def _admit_request(policy: str, key: str, cost: int, hold: int, value: int) -> Any:
        return _grpc.admit_request(policy, key, cost, hold, value)

    @staticmethod
    def _heartbeat_request(lease_ids: Sequence[str]) -> Any:
        return pb.HeartbeatRequest(lease_ids=list(lease_ids))

    @staticmethod
    def _release_request(lease_id: str, dropped: bool) -> Any:
        return pb.ReleaseRequest(lease_id=lease_id, dropped=dropped)

    # Replies.
    @staticmethod
    def _decision(resp: Any) -> Decision:
        return _grpc.decision(resp.decision)

    @staticmethod
    def _decisions(resp: Any) -> list[Decision]:
        return [_grpc.decision(d) for d in resp.decisions]

    @staticmethod
    def _forecast(resp: Any) -> Forecast:
        return _grpc.forecast(resp.forecast)

    @staticmethod
    def _heartbeat_result(resp: Any) -> HeartbeatResult:
        return HeartbeatResult(tuple(resp.live_ids), tuple(resp.reclaimed_ids), int(resp.next_deadline))

    def _admitted(self, resp: Any, heartbeat: bool) -> tuple[A, bool]:
        """The admission of an Admit reply, and whether a heartbeat loop must start for it: one is
        kept for every lease admitted with ``heartbeat=True`` until the backend closes."""
        a = self._admission(
            self,
            _grpc.decision(resp.decision),
            resp.lease_id,
            int(resp.lease_expires_at),
            resp.binding_axis,
            bool(resp.policy_denied),
            heartbeat=heartbeat,
        )
        if not (heartbeat and a.held):
            return a, False
        with self._lock:
            if self._closed:
                return a, False  # closing: the server's ttl reclaims it
            self._leases[a.lease_id] = a
            start, self._beating = not self._beating, True
            return a, start

    def _lease_ids(self) -> list[str]:
        with self._lock:
            return list(self._leases)

    def _forget(self, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)

    def _renewed(self, result: HeartbeatResult) -> None:
        """Marks the leases a heartbeat found reclaimed, and stops renewing them."""
        for lease_id in result.reclaimed_ids:
            with self._lock:
                a = self._leases.pop(lease_id, None)
            if a is not None:
                a._mark_reclaimed()

    def _close(self) -> bool:
        """Marks the backend closed; True the first time."""
        with self._lock:
            first, self._closed = not self._closed, True
            return first


__all__ = ["BaseAdmission", "BaseServiceBackend", "HeartbeatResult"]
