"""Strategies for the direct door: each names its Lua script and carries its options, validated on
construction with the same bounds as the Go engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MAX_EXACT = 1 << 53
"""The largest integer a double holds exactly: every option and count stays within it."""
MAX_LOG_LIMIT = 10_000
"""A sliding log keeps one entry per admitted unit; past this, use SlidingWindow."""
MAX_BUCKETS = 10_000


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_EXACT:
        raise ValueError(f"{name} must be an integer from 1 to 2**53, not {value!r}")


def _positive_number(name: str, value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not 0 < value <= MAX_EXACT
    ):
        raise ValueError(f"{name} must be a positive number, not {value!r}")


@runtime_checkable
class Strategy(Protocol):
    """What a backend needs of a strategy: its kind (the manifest's strategy name), its options by the
    manifest's ARGV names, and the ceiling its decisions report."""

    @property
    def kind(self) -> str: ...

    def params(self) -> dict[str, float]: ...

    @property
    def reported_limit(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Gcra:
    """``limit`` units per ``period_ms`` at a steady rate, up to ``burst`` at once (default: limit)."""

    limit: int
    period_ms: int | float
    burst: int | None = None

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit)
        _positive_number("period_ms", self.period_ms)
        if self.burst is not None:
            _positive_int("burst", self.burst)

    @property
    def kind(self) -> str:
        return "gcra"

    @property
    def reported_limit(self) -> int:
        return self.limit if self.burst is None else self.burst

    def params(self) -> dict[str, float]:
        return {"periodMs": self.period_ms, "limit": self.limit, "burst": self.reported_limit}


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """``capacity`` tokens, refilled at ``refill_per_sec``."""

    capacity: int
    refill_per_sec: int | float

    def __post_init__(self) -> None:
        _positive_int("capacity", self.capacity)
        _positive_number("refill_per_sec", self.refill_per_sec)

    @property
    def kind(self) -> str:
        return "tokenBucket"

    @property
    def reported_limit(self) -> int:
        return self.capacity

    def params(self) -> dict[str, float]:
        return {"capacity": self.capacity, "refillPerSec": self.refill_per_sec}


@dataclass(frozen=True, slots=True)
class FixedWindow:
    """``limit`` units per aligned window of ``window_ms``."""

    limit: int
    window_ms: int | float

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit)
        _positive_number("window_ms", self.window_ms)

    @property
    def kind(self) -> str:
        return "fixedWindow"

    @property
    def reported_limit(self) -> int:
        return self.limit

    def params(self) -> dict[str, float]:
        return {"limit": self.limit, "windowMs": self.window_ms}


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """``limit`` units in any trailing ``window_ms``, approximated with ``buckets`` sub-windows."""

    limit: int
    window_ms: int | float
    buckets: int = 10

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit)
        _positive_number("window_ms", self.window_ms)
        if not isinstance(self.buckets, int) or isinstance(self.buckets, bool) or not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be an integer from 1 to {MAX_BUCKETS}, not {self.buckets!r}")

    @property
    def kind(self) -> str:
        return "slidingWindow"

    @property
    def reported_limit(self) -> int:
        return self.limit

    def params(self) -> dict[str, float]:
        return {"windowMs": self.window_ms, "limit": self.limit, "buckets": self.buckets}


@dataclass(frozen=True, slots=True)
class SlidingWindowLog:
    """Exactly ``limit`` units in any trailing ``window_ms`` (one stored entry per unit)."""

    limit: int
    window_ms: int | float

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit)
        if self.limit > MAX_LOG_LIMIT:
            raise ValueError(f"limit must be at most {MAX_LOG_LIMIT} for SlidingWindowLog; use SlidingWindow")
        _positive_number("window_ms", self.window_ms)

    @property
    def kind(self) -> str:
        return "slidingWindowLog"

    @property
    def reported_limit(self) -> int:
        return self.limit

    def params(self) -> dict[str, float]:
        return {"windowMs": self.window_ms, "limit": self.limit}


@dataclass(frozen=True, slots=True)
class TokenBudget:
    """A cost budget metered after the fact: ``budget`` units per aligned ``window_ms``; the debit that
    crosses the budget is admitted in full, later ones in the window are refused. On the direct door,
    ``check(key, tokens)`` debits."""

    budget: int
    window_ms: int | float

    def __post_init__(self) -> None:
        _positive_int("budget", self.budget)
        _positive_number("window_ms", self.window_ms)

    @property
    def kind(self) -> str:
        return "tokenBudget"

    @property
    def reported_limit(self) -> int:
        return self.budget

    def params(self) -> dict[str, float]:
        return {"budget": self.budget, "windowMs": self.window_ms}


def from_spec(kind: str, options: Mapping[str, float]) -> Strategy:
    """Builds a strategy from its kind and options as the golden vectors and policy files name them
    (``{"kind": "gcra", "options": {"limit": 10, "periodMs": 1000, "burst": 5}}``)."""
    o = dict(options)

    def whole(name: str) -> int:
        v = o[name]
        if float(v) != int(v):
            raise ValueError(f"{name} must be an integer, not {v!r}")
        return int(v)

    if kind == "gcra":
        return Gcra(whole("limit"), o.get("periodMs", o.get("windowMs", 0)), whole("burst") if "burst" in o else None)
    if kind == "tokenBucket":
        return TokenBucket(whole("capacity"), o["refillPerSec"])
    if kind == "fixedWindow":
        return FixedWindow(whole("limit"), o["windowMs"])
    if kind == "slidingWindow":
        return SlidingWindow(whole("limit"), o["windowMs"], whole("buckets") if "buckets" in o else 10)
    if kind == "slidingWindowLog":
        return SlidingWindowLog(whole("limit"), o["windowMs"])
    if kind == "tokenBudget":
        return TokenBudget(whole("budget"), o["windowMs"])
    raise ValueError(f"unknown strategy kind {kind!r}")


__all__ = [
    "FixedWindow",
    "Gcra",
    "SlidingWindow",
    "SlidingWindowLog",
    "Strategy",
    "TokenBucket",
    "TokenBudget",
    "from_spec",
]
