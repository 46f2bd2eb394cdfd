"""Spending leased credits locally: the client-side half of two-tier limiting. Pure, no I/O; it
follows the ``lease`` suites of the golden vectors exactly."""

from __future__ import annotations

from dataclasses import dataclass

from .decision import Decision


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """``capacity`` units granted by the server, valid until ``expires_at`` (epoch ms; 0 = no window)."""

    capacity: int
    expires_at: int

    def __post_init__(self) -> None:
        if not isinstance(self.capacity, int) or self.capacity < 0:
            raise ValueError(f"capacity must be a non-negative int, not {self.capacity!r}")
        if not isinstance(self.expires_at, int) or self.expires_at < 0:
            raise ValueError(f"expires_at must be a non-negative int, not {self.expires_at!r}")


class LeaseSpender:
    """One key's leased credits. ``limit`` is the global ceiling reported in decisions; ``ttl_ms`` the
    lease life used for ``reset_at`` when a grant carries no window; with ``window_coupled``, credits
    are dropped when their window ends, which keeps a fleet within the limit per window."""

    __slots__ = ("_credits", "_expires_at", "_limit", "_ttl_ms", "_window_coupled")

    def __init__(self, *, limit: int, ttl_ms: int = 0, window_coupled: bool = True) -> None:
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        self._limit = limit
        self._ttl_ms = ttl_ms
        self._window_coupled = window_coupled
        self._credits = 0
        self._expires_at = 0

    @property
    def credits(self) -> int:
        return self._credits

    @property
    def expires_at(self) -> int | None:
        """The end of the window the credits belong to; None before the first grant."""
        return self._expires_at or None

    def apply_lease(self, grant: LeaseGrant) -> None:
        """Adds a grant's credits; window-coupled, a grant for another window replaces the old credits."""
        if self._window_coupled and grant.expires_at != self._expires_at:
            self._credits = 0
        self._credits += grant.capacity
        self._expires_at = grant.expires_at

    def spend(self, now: int, cost: int = 1) -> Decision | None:
        """Takes ``cost`` credits at ``now`` and returns the allow, or None when the credits cannot cover
        it (nothing is spent: lease more, or ask the server). Never a denial. ``cost`` must be a
        positive int: a zero or negative one would allow without spending, or add credits."""
        if not isinstance(cost, int) or isinstance(cost, bool) or cost < 1:
            raise ValueError(f"cost must be a positive int, not {cost!r}")
        if self._window_coupled and self._expires_at and now >= self._expires_at:
            self._credits = 0
        if self._credits < cost:
            return None
        self._credits -= cost
        reset_at = self._expires_at or now + self._ttl_ms
        return Decision(True, self._limit, self._credits, reset_at, 0)

    def reset(self) -> None:
        """Forgets every credit."""
        self._credits = 0
        self._expires_at = 0


__all__ = ["LeaseGrant", "LeaseSpender"]
