"""Strategies for the direct door: each names its Lua script and carries its options, validated on
construction with the same bounds as the Go engine."""

from __future__ import annotations

import datetime
import math
import zoneinfo
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


_CALENDAR = ("calendar-day", "calendar-week", "calendar-month")
_CADENCES = (*_CALENDAR, "fixed", "rolling")
_DAY_MS = 86_400_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _days_from_civil(y: int, m: int, d: int) -> int:
    return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days


@dataclass(frozen=True, slots=True)
class Quota:
    """``limit`` units per period that resets on the calendar: every local midnight
    (``calendar-day``), at the start of a week (``calendar-week``, ``week_starts_on`` 0 = Sunday,
    default Monday), on the 1st at 00:00 (``calendar-month``), every ``period_ms`` from ``anchor``
    (``fixed``), or a sliding ``period_ms`` in ``buckets`` (``rolling``). Calendar cadences take a
    fixed ``offset_minutes`` or an IANA ``time_zone`` (local midnights by the zone's rules: a day
    across a DST change lasts 23 or 25 hours). An option the cadence does not use is refused."""

    limit: int
    reset_cadence: str
    offset_minutes: int = 0
    time_zone: str | None = None
    week_starts_on: int | None = None
    period_ms: int | float | None = None
    anchor: int = 0
    buckets: int | None = None

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit)
        c = self.reset_cadence
        if c not in _CADENCES:
            raise ValueError(f"reset_cadence must be one of {', '.join(_CADENCES)}, not {c!r}")
        calendar = c in _CALENDAR
        for name, used in (
            ("offset_minutes", not calendar and self.offset_minutes != 0),
            ("time_zone", not calendar and self.time_zone is not None),
            ("week_starts_on", c != "calendar-week" and self.week_starts_on is not None),
            ("period_ms", calendar and self.period_ms is not None),
            ("anchor", c != "fixed" and self.anchor != 0),
            ("buckets", c != "rolling" and self.buckets is not None),
        ):
            if used:
                raise ValueError(f"{name} is not used by reset_cadence {c}")
        if calendar:
            off = self.offset_minutes
            if not isinstance(off, int) or isinstance(off, bool) or not -840 <= off <= 840:
                raise ValueError(f"offset_minutes must be an integer from -840 to 840, not {off!r}")
            if self.time_zone is not None:
                if off != 0:
                    raise ValueError("time_zone and offset_minutes are exclusive: give one")
                zoneinfo.ZoneInfo(self.time_zone)  # an unknown zone raises here, not at the first check
            w = self.week_starts_on
            if w is not None and (not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 6):
                raise ValueError(f"week_starts_on must be 0 (Sunday) to 6 (Saturday), not {w!r}")
        elif c == "fixed":
            _positive_int("period_ms", self.period_ms)
            if not isinstance(self.anchor, int) or isinstance(self.anchor, bool) or abs(self.anchor) > MAX_EXACT:
                raise ValueError(f"anchor must be an epoch-ms integer within 2**53, not {self.anchor!r}")
        else:
            self.sliding()

    @property
    def kind(self) -> str:
        return "quota"

    @property
    def reported_limit(self) -> int:
        return self.limit

    def sliding(self) -> SlidingWindow:
        """A rolling quota's sliding window (its scripts and state layout)."""
        if self.reset_cadence != "rolling" or self.period_ms is None:
            raise ValueError("only a rolling quota has a sliding window")
        return SlidingWindow(self.limit, self.period_ms, 10 if self.buckets is None else self.buckets)

    def params(self) -> dict[str, float]:
        if self.reset_cadence == "rolling":
            return self.sliding().params()
        modes = {"calendar-month": 1, "calendar-week": 2, "calendar-day": 3, "fixed": 4}
        return {
            "limit": self.limit,
            "mode": 5 if self.time_zone is not None else modes[self.reset_cadence],
            "periodMs": self.period_ms or 0,
            "anchor": self.anchor,
            "offsetMs": self.offset_minutes * 60_000,
            "weekStartsOn": 1 if self.week_starts_on is None else self.week_starts_on,
        }

    def period(self, now: int) -> tuple[int, int]:
        """The period ``now`` (epoch ms) falls in, as [start, end) in epoch ms (not for rolling)."""
        if self.reset_cadence == "fixed":
            p = int(self.period_ms or 0)
            start = self.anchor + (now - self.anchor) // p * p
            return start, start + p
        if self.time_zone is None:
            off = self.offset_minutes * 60_000
            day = (now + off) // _DAY_MS
            first, days = self._first_day(datetime.date(1970, 1, 1) + datetime.timedelta(days=day))
            return first * _DAY_MS - off, (first + days) * _DAY_MS - off
        zone = zoneinfo.ZoneInfo(self.time_zone)
        local = (_EPOCH + datetime.timedelta(milliseconds=now)).astimezone(zone).date()
        first, days = self._first_day(local)
        begin = datetime.date(1970, 1, 1) + datetime.timedelta(days=first)
        return _midnight(zone, begin), _midnight(zone, begin + datetime.timedelta(days=days))

    def _first_day(self, d: datetime.date) -> tuple[int, int]:
        """The period holding the civil date d: its first day (days since 1970-01-01) and length."""
        day = (d - datetime.date(1970, 1, 1)).days
        if self.reset_cadence == "calendar-day":
            return day, 1
        if self.reset_cadence == "calendar-week":
            start = 1 if self.week_starts_on is None else self.week_starts_on
            return day - ((d.isoweekday() % 7 - start) % 7), 7
        nxt = datetime.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        first = _days_from_civil(d.year, d.month, 1)
        return first, (nxt - datetime.date(d.year, d.month, 1)).days

    def around(self, now: int) -> tuple[int, int, int, int]:
        """The boundaries of the period before now's, now's and the next, ascending: what a Redis
        script is sent to decide a zone's periods on its own clock."""
        start, end = self.period(now)
        before, _ = self.period(start - 1)
        _, after = self.period(end)
        return before, start, end, after


def _midnight(zone: zoneinfo.ZoneInfo, d: datetime.date) -> int:
    """The epoch ms of local 00:00 on d in zone or, when the zone skips that midnight, of the first
    instant after the gap (the first instant whose local date is d)."""
    guess = datetime.datetime(d.year, d.month, d.day, tzinfo=zone)
    t = int((guess - _EPOCH) / datetime.timedelta(milliseconds=1))

    def on_or_after(ms: int) -> bool:
        return (_EPOCH + datetime.timedelta(milliseconds=ms)).astimezone(zone).date() >= d

    back = (_EPOCH + datetime.timedelta(milliseconds=t)).astimezone(zone)
    if back.date() == d and back.hour == 0 and back.minute == 0 and not on_or_after(t - 1):
        return t
    lo, hi = t - 2 * _DAY_MS, t + 2 * _DAY_MS  # lo before d, hi on or after it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if on_or_after(mid):
            hi = mid
        else:
            lo = mid
    return hi


def from_spec(kind: str, options: Mapping[str, float | str]) -> Strategy:
    """Builds a strategy from its kind and options as the golden vectors and policy files name them
    (``{"kind": "gcra", "options": {"limit": 10, "periodMs": 1000, "burst": 5}}``)."""
    o = dict(options)

    def whole(name: str) -> int:
        v = o[name]
        if isinstance(v, str) or float(v) != int(v):
            raise ValueError(f"{name} must be an integer, not {v!r}")
        return int(v)

    if kind == "quota":
        text = {k: v for k, v in o.items() if isinstance(v, str)}
        zone = text.get("timeZone")
        period = o.get("periodMs")
        return Quota(
            whole("limit"),
            str(text.get("resetCadence", "")),
            offset_minutes=whole("offsetMinutes") if "offsetMinutes" in o else 0,
            time_zone=zone,
            week_starts_on=whole("weekStartsOn") if "weekStartsOn" in o else None,
            period_ms=None if period is None or isinstance(period, str) else period,
            anchor=whole("anchor") if "anchor" in o else 0,
            buckets=whole("buckets") if "buckets" in o else None,
        )
    n: dict[str, float] = {k: v for k, v in o.items() if not isinstance(v, str)}

    if kind == "gcra":
        return Gcra(whole("limit"), n.get("periodMs", n.get("windowMs", 0)), whole("burst") if "burst" in n else None)
    if kind == "tokenBucket":
        return TokenBucket(whole("capacity"), n["refillPerSec"])
    if kind == "fixedWindow":
        return FixedWindow(whole("limit"), n["windowMs"])
    if kind == "slidingWindow":
        return SlidingWindow(whole("limit"), n["windowMs"], whole("buckets") if "buckets" in o else 10)
    if kind == "slidingWindowLog":
        return SlidingWindowLog(whole("limit"), n["windowMs"])
    if kind == "tokenBudget":
        return TokenBudget(whole("budget"), n["windowMs"])
    raise ValueError(f"unknown strategy kind {kind!r}")


__all__ = [
    "FixedWindow",
    "Gcra",
    "Quota",
    "SlidingWindow",
    "SlidingWindowLog",
    "Strategy",
    "TokenBucket",
    "TokenBudget",
    "from_spec",
]
