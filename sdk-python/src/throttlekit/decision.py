"""The values every backend returns."""

from __future__ import annotations

from dataclasses import dataclass


def _check_int(name: str, value: object) -> None:
    # bool is an int subclass; a True where a count belongs is a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request: the five fields of the wire's ``Decision``."""

    allowed: bool
    """Whether the request is permitted."""
    limit: int
    """The effective ceiling: burst (gcra), capacity (token bucket), the window quota, or the budget."""
    remaining: int
    """Whole units left before the next rejection. Never negative from a backend; a Decision built by
    hand may hold any int (headers render a negative one as 0)."""
    reset_at: int
    """Epoch ms at which the limiter is fully replenished (0 when unknown, e.g. a fail-mode decision)."""
    retry_after_ms: int
    """How long to wait before retrying; 0 when allowed."""

    def __post_init__(self) -> None:
        # Types only: a test double or a synthesized answer may carry any numbers, as in 0.5.
        if not isinstance(self.allowed, bool):
            raise ValueError(f"allowed must be a bool, not {type(self.allowed).__name__}")
        _check_int("limit", self.limit)
        _check_int("remaining", self.remaining)
        _check_int("reset_at", self.reset_at)
        _check_int("retry_after_ms", self.retry_after_ms)


@dataclass(frozen=True, slots=True)
class Forecast:
    """When capacity returns to a key, spending nothing."""

    spendable_now: int
    """How many consecutive requests of the asked cost would be admitted now."""
    next_replenish_at: int
    """Earliest epoch ms at which more is available than now (now when already full)."""
    full_at: int
    """Earliest epoch ms at which the limiter is full again (now when already full)."""

    def __post_init__(self) -> None:
        _check_int("spendable_now", self.spendable_now)
        _check_int("next_replenish_at", self.next_replenish_at)
        _check_int("full_at", self.full_at)


__all__ = ["Decision", "Forecast"]
