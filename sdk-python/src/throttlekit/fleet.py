"""What the Fleet door grants, as plain values (no grpc import)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .decision import Decision
from .lease_spender import LeaseGrant, LeaseSpender


@dataclass(frozen=True)
class Lease:
    """A grant of a federated policy's window: spend ``capacity`` locally until ``expiry_ms`` (epoch ms),
    then lease again. ``capacity`` 0 is a refusal; ``retry_after_ms`` then says when the budget
    refreshes. ``limit`` is the policy's per-window ceiling."""

    capacity: int
    expiry_ms: int
    refresh_interval_ms: int
    safe_capacity: int
    retry_after_ms: int
    limit: int

    @property
    def granted(self) -> bool:
        return self.capacity > 0

    def denied_decision(self) -> Decision:
        """The server's refusal as a decision."""
        return Decision(False, self.limit, 0, self.expiry_ms, self.retry_after_ms)

    denied = denied_decision


AXES = {"rate": "AXIS_RATE", "concurrency": "AXIS_CONCURRENCY", "token_budget": "AXIS_TOKEN_BUDGET"}
"""Axis names to the wire's enum values (concurrency is refused by the server: not leasable)."""

MAX_ROUNDS = 64
"""Leases one request may need: a partial grant makes progress, a refusal ends the request."""


class Credits:
    """What both leased limiters hold: the spender, made from the first grant's limit. Not thread-safe;
    the limiters serialize access."""

    def __init__(self, window_coupled: bool) -> None:
        self._window_coupled = window_coupled
        self._spender: LeaseSpender | None = None

    @property
    def held(self) -> int:
        return 0 if self._spender is None else self._spender.credits

    def spend(self, cost: int, now: int | None) -> Decision | None:
        """The allow for ``cost`` from local credits, or None when they cannot cover it."""
        if self._spender is None:
            return None
        return self._spender.spend(time.time_ns() // 1_000_000 if now is None else now, cost)

    def grant(self, lease: Lease) -> Decision | None:
        """Adds a lease's credits; a refusal comes back as the server's denial."""
        if not lease.granted:
            return lease.denied_decision()
        if self._spender is None:
            self._spender = LeaseSpender(limit=lease.limit, window_coupled=self._window_coupled)
        self._spender.apply_lease(LeaseGrant(lease.capacity, lease.expiry_ms))
        return None


def lease_from_proto(msg: Any) -> Lease:
    return Lease(
        int(msg.capacity),
        int(msg.expiry_ms),
        int(msg.refresh_interval_ms),
        int(msg.safe_capacity),
        int(msg.retry_after_ms),
        int(msg.limit),
    )


__all__ = ["Lease"]
