"""The Fleet door's synchronous client: lease chunks of a federated policy's window and spend them
locally (:class:`LeasedLimiter`), one round trip per chunk instead of per request."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from . import _grpc
from ._grpc import pb, pb_grpc
from .decision import Decision
from .errors import ThrottleKitError
from .fleet import AXES, MAX_ROUNDS, Credits, Lease, lease_from_proto


def reserve_request(policy: str, domain: str, wants: int, has: int, used: int, axis: str) -> Any:
    """The Reserve request of both clients, validated before anything is sent."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, not {axis!r}")
    return pb.ReserveRequest(
        policy=policy,
        caller=pb.Caller(domain=domain),
        wants=_grpc.check_units("wants", wants),
        has=has,
        used=used,
        axis=AXES[axis],
    )


class FleetBackend:
    """Leases budget from a server's Fleet door::

        with FleetBackend("localhost:50051") as fleet:
            limiter = fleet.leased("global-api", domain="acme", batch=100)
            d = limiter.check()  # local while credits last; one Reserve per 100

    Without a fleet secret the server answers loopback callers only; pass ``secret`` (sent as
    ``x-fleet-secret``) and TLS ``credentials`` for a remote door."""

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
        self._stub = pb_grpc.FleetStub(self._channel)
        self._metadata = _grpc.with_secret(None, "x-fleet-secret", secret)
        self._timeout = timeout

    def reserve(
        self, policy: str, *, domain: str = "", wants: int = 1, has: int = 0, used: int = 0, axis: str = "rate"
    ) -> Lease:
        """Leases up to ``wants`` units of ``policy``'s window for ``domain`` (``""``: the whole budget);
        fewer when fewer are left, none (a refusal) when it is spent."""
        req = reserve_request(policy, domain, wants, has, used, axis)
        try:
            resp = self._stub.Reserve(req, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _grpc.as_error(err) from None
        return lease_from_proto(resp.lease)

    def leased(self, policy: str, *, domain: str = "", batch: int = 1, window_coupled: bool = True) -> LeasedLimiter:
        """A :class:`LeasedLimiter` leasing ``policy`` (for ``domain``) ``batch`` units at a time."""
        return LeasedLimiter(self, policy, domain=domain, batch=batch, window_coupled=window_coupled)

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> FleetBackend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LeasedLimiter:
    """Decides one policy's (and domain's) requests from leased credits: locally while they last, one
    :meth:`FleetBackend.reserve` of ``max(batch, cost)`` when they run out. A refusal by the server is a
    denial with its retry hint. Thread-safe."""

    def __init__(
        self, backend: FleetBackend, policy: str, *, domain: str = "", batch: int = 1, window_coupled: bool = True
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._backend = backend
        self._policy = policy
        self._domain = domain
        self._batch = batch
        self._credits = Credits(window_coupled)
        self._lock = threading.Lock()

    @property
    def credits(self) -> int:
        """The credits held locally."""
        return self._credits.held

    def check(self, cost: int = 1, *, now: int | None = None) -> Decision:
        """Spends ``cost`` units (0 means 1) at ``now`` (epoch ms; default the wall clock)."""
        cost = max(_grpc.check_units("cost", cost), 1)
        with self._lock:
            for _ in range(MAX_ROUNDS):
                d = self._credits.spend(cost, now)
                if d is None:
                    lease = self._backend.reserve(self._policy, domain=self._domain, wants=max(self._batch, cost))
                    d = self._credits.grant(lease)
                if d is not None:
                    return d
        raise ThrottleKitError(f"no lease covered a request of cost {cost} in {MAX_ROUNDS} rounds")


__all__ = ["FleetBackend", "Lease", "LeasedLimiter"]
