"""Peek and Forecast for the direct door, computed from a key's raw state as the Go engine computes
them (same operations, same order: the answers are compared bit for bit). Checks themselves always run
in Redis, in the shipped Lua; this module only answers what a request *would* see."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .decision import Decision, Forecast
from .strategies import FixedWindow, Gcra, Quota, SlidingWindow, SlidingWindowLog, Strategy, TokenBucket

MAX_REPLY = 1 << 53
MAX_SKEW_MS = 60_000
_MAX_HORIZON_MS = 1 << 40


def _int(x: float) -> int:
    if x != x:
        return 0
    return int(max(-MAX_REPLY, min(MAX_REPLY, x)))


def _floor(x: float) -> int:
    return _int(math.floor(x)) if math.isfinite(x) else _int(x)


def _ceil(x: float) -> int:
    return _int(math.ceil(x)) if math.isfinite(x) else _int(x)


@dataclass(slots=True)
class State:
    """One key's state: scalars v0, v1 and a series, as the Go engine keeps it."""

    present: bool = False
    v0: float = 0.0
    v1: float = 0.0
    series: list[float] = field(default_factory=list)

    def copy(self) -> State:
        return State(self.present, self.v0, self.v1, list(self.series))


def _decision(allowed: bool, limit: int, remaining: int, reset_at: int, retry: int) -> Decision:
    return Decision(allowed, limit, max(0, remaining), reset_at, max(0, retry))


class Model:
    limit: int

    def check(self, s: State, now: int, cost: int) -> Decision:
        raise NotImplementedError

    def peek(self, s: State, now: int) -> Decision:
        raise NotImplementedError

    def settle_ms(self, s: State, now: int) -> int:
        raise NotImplementedError

    def sane(self, s: State, n: float) -> bool:
        raise NotImplementedError


class _Gcra(Model):
    def __init__(self, g: Gcra) -> None:
        self.limit = g.reported_limit
        self.t = float(g.period_ms) / float(g.limit)
        self.tau = self.t * float(self.limit)

    def check(self, s: State, now: int, cost: int) -> Decision:
        n = float(now)
        inc = self.t * float(cost)
        tat = s.v0 if s.present else n
        if tat < n:
            tat = n
        new_tat = tat + inc
        allow_at = new_tat - self.tau
        if n < allow_at:
            return _decision(
                False, self.limit, _floor((self.tau - (tat - n)) / self.t), _ceil(tat), _ceil(allow_at - n)
            )
        s.present, s.v0 = True, new_tat
        return _decision(True, self.limit, _floor((self.tau - (new_tat - n)) / self.t), _ceil(new_tat), 0)

    def peek(self, s: State, now: int) -> Decision:
        n = float(now)
        tat = s.v0 if s.present and s.v0 > n else n
        remaining = max(0, _floor((self.tau - (tat - n)) / self.t))
        allowed = remaining >= 1
        retry = 0 if allowed else _ceil(tat + self.t - self.tau - n)
        return _decision(allowed, self.limit, remaining, _ceil(tat), retry)

    def settle_ms(self, s: State, now: int) -> int:
        return max(0, _ceil(s.v0 - float(now))) if s.present else 0

    def sane(self, s: State, n: float) -> bool:
        return s.v0 > -math.inf and s.v0 <= n + self.tau + MAX_SKEW_MS


class _TokenBucket(Model):
    def __init__(self, b: TokenBucket) -> None:
        self.limit = b.capacity
        self.capacity = float(b.capacity)
        self.per_ms = float(b.refill_per_sec) / 1000

    def _refill(self, s: State, n: float) -> float:
        tokens, last = (s.v0, s.v1) if s.present else (self.capacity, n)
        elapsed = max(0.0, n - last)
        return min(self.capacity, tokens + elapsed * self.per_ms)

    def check(self, s: State, now: int, cost: int) -> Decision:
        n, q = float(now), float(cost)
        tokens = self._refill(s, n)
        if tokens >= q:
            new = tokens - q
            s.present, s.v0, s.v1 = True, new, n
            return _decision(True, self.limit, _floor(new), _int(n + math.ceil((self.capacity - new) / self.per_ms)), 0)
        return _decision(
            False,
            self.limit,
            _floor(tokens),
            _int(n + math.ceil((self.capacity - tokens) / self.per_ms)),
            _ceil((q - tokens) / self.per_ms),
        )

    def peek(self, s: State, now: int) -> Decision:
        n = float(now)
        tokens = self._refill(s, n)
        allowed = tokens >= 1
        retry = 0 if allowed else _ceil((1 - tokens) / self.per_ms)
        return _decision(
            allowed, self.limit, _floor(tokens), _int(n + math.ceil((self.capacity - tokens) / self.per_ms)), retry
        )

    def settle_ms(self, s: State, now: int) -> int:
        if not s.present:
            return 0
        return max(1, _ceil(self.capacity / self.per_ms)) + max(0, _ceil(s.v1 - float(now)))

    def sane(self, s: State, n: float) -> bool:
        return 0 <= s.v0 < math.inf and s.v1 > -math.inf and s.v1 <= n + MAX_SKEW_MS


class _FixedWindow(Model):
    def __init__(self, w: FixedWindow) -> None:
        self.limit = w.limit
        self.lim = float(w.limit)
        self.window_ms = float(w.window_ms)

    def _window(self, s: State, n: float) -> tuple[float, float, float]:
        start = math.floor(n / self.window_ms) * self.window_ms
        reset_at = start + self.window_ms
        count = s.v1 if s.present and s.v0 == start else 0.0
        return start, reset_at, count

    def check(self, s: State, now: int, cost: int) -> Decision:
        n, q = float(now), float(cost)
        start, reset_at, count = self._window(s, n)
        if count + q <= self.lim:
            s.present, s.v0, s.v1 = True, start, count + q
            return _decision(True, self.limit, _int(self.lim - (count + q)), _int(reset_at), 0)
        return _decision(False, self.limit, _int(self.lim - count), _int(reset_at), _ceil(reset_at - n))

    def peek(self, s: State, now: int) -> Decision:
        n = float(now)
        _, reset_at, count = self._window(s, n)
        allowed = count + 1 <= self.lim
        return _decision(
            allowed, self.limit, _int(self.lim - count), _int(reset_at), 0 if allowed else _ceil(reset_at - n)
        )

    def settle_ms(self, s: State, now: int) -> int:
        _, reset_at, _ = self._window(s, float(now))
        return max(0, _ceil(reset_at - float(now)))

    def sane(self, s: State, n: float) -> bool:
        return math.isfinite(s.v0) and 0 <= s.v1 < math.inf


class _SlidingWindow(Model):
    def __init__(self, sw: SlidingWindow) -> None:
        self.limit = sw.limit
        self.lim = float(sw.limit)
        self.window_ms = float(sw.window_ms)
        self.buckets = float(sw.buckets)
        self.slots = sw.buckets + 1
        self.w = self.window_ms / self.buckets

    def _count(self, s: State, tick: float) -> float:
        if not s.present:
            return 0.0
        i = 2 * (int(tick) % self.slots)
        if i + 1 >= len(s.series) or s.series[i] != tick:
            return 0.0
        return s.series[i + 1]

    def _estimate(self, s: State, n: float) -> tuple[float, float, float, float, float]:
        c = float(math.floor(n / self.w))
        elapsed = max(0.0, n - c * self.w)
        weight = min(1.0, max(0.0, (self.w - elapsed) / self.w))
        full = 0.0
        tick = c - self.buckets + 1
        while tick <= c:
            full += self._count(s, tick)
            tick += 1
        oldest = self._count(s, c - self.buckets)
        return c, weight, oldest, full + oldest * weight, (c + 1) * self.w + self.window_ms

    def _deny(self, e: tuple[float, float, float, float, float], n: float, q: float) -> Decision:
        c, weight, oldest, estimate, reset_at = e
        excess = estimate + q - self.lim
        if oldest > 0 and excess <= oldest * weight:
            retry = _ceil(excess * self.w / oldest)
        else:
            retry = _ceil((c + 1) * self.w - n)
        return _decision(False, self.limit, _floor(self.lim - estimate), _ceil(reset_at), max(1, retry))

    def check(self, s: State, now: int, cost: int) -> Decision:
        n, q = float(now), float(cost)
        e = self._estimate(s, n)
        c, _, _, estimate, reset_at = e
        projected = estimate + q
        if projected > self.lim:
            return self._deny(e, n, q)
        if not s.present or len(s.series) != 2 * self.slots:
            s.series = [-1.0 if i % 2 == 0 else 0.0 for i in range(2 * self.slots)]
        i = 2 * (int(c) % self.slots)
        if s.series[i] == c:
            s.series[i + 1] += q
        else:
            s.series[i], s.series[i + 1] = c, q
        s.present = True
        return _decision(True, self.limit, _floor(self.lim - projected), _ceil(reset_at), 0)

    def peek(self, s: State, now: int) -> Decision:
        n = float(now)
        e = self._estimate(s, n)
        if e[3] + 1 > self.lim:
            return self._deny(e, n, 1.0)
        return _decision(True, self.limit, _floor(self.lim - e[3]), _ceil(e[4]), 0)

    def settle_ms(self, s: State, now: int) -> int:
        return _ceil(self.window_ms + self.w) + _ceil(self.w)

    def sane(self, s: State, n: float) -> bool:
        if len(s.series) % 2:
            return False
        return all(math.isfinite(s.series[i]) and 0 <= s.series[i + 1] < math.inf for i in range(0, len(s.series), 2))


class _SlidingWindowLog(Model):
    def __init__(self, sl: SlidingWindowLog) -> None:
        self.limit = sl.limit
        self.lim = float(sl.limit)
        self.window_ms = float(sl.window_ms)

    def _live(self, s: State, n: float) -> list[float]:
        if not s.present:
            return []
        return s.series[bisect.bisect_right(s.series, n - self.window_ms) :]

    def _deny(self, live: list[float], n: float, q: float) -> Decision:
        count = float(len(live))
        first = live[0] if live else n
        if not live:
            retry = _ceil(self.window_ms)
        else:
            k = min(max(count + q - self.lim, 1.0), count)
            retry = max(1, _ceil(live[int(k) - 1] + self.window_ms - n))
        return _decision(False, self.limit, _int(self.lim - count), _ceil(first + self.window_ms), retry)

    def check(self, s: State, now: int, cost: int) -> Decision:
        n, q = float(now), float(cost)
        live = self._live(s, n)
        count = float(len(live))
        if count + q > self.lim:
            return self._deny(live, n, q)
        series = list(live)
        at = bisect.bisect_right(series, n)
        series[at:at] = [n] * cost
        s.present, s.series = True, series
        return _decision(True, self.limit, _int(self.lim - (count + q)), _ceil(series[0] + self.window_ms), 0)

    def peek(self, s: State, now: int) -> Decision:
        n = float(now)
        live = self._live(s, n)
        count = float(len(live))
        if count + 1 > self.lim:
            return self._deny(live, n, 1.0)
        first = live[0] if live and live[0] < n else n
        return _decision(True, self.limit, _int(self.lim - count), _ceil(first + self.window_ms), 0)

    def settle_ms(self, s: State, now: int) -> int:
        if not s.present or not s.series:
            return 0
        return max(0, _ceil(s.series[-1] + self.window_ms - float(now)))

    def sane(self, s: State, n: float) -> bool:
        if not s.series:
            return True
        return s.series[0] > -math.inf and s.series[0] <= s.series[-1] <= n + MAX_SKEW_MS


class _Quota(Model):
    """A calendar or fixed quota: v0 = the period's start, v1 = the units counted in it."""

    def __init__(self, q: Quota) -> None:
        self.q = q
        self.limit = q.limit
        self.lim = float(q.limit)

    def _count(self, s: State, start: int) -> float:
        return s.v1 if s.present and s.v0 == float(start) else 0.0

    def check(self, s: State, now: int, cost: int) -> Decision:
        start, end = self.q.period(now)
        c = self._count(s, start)
        if c + cost <= self.lim:
            s.present, s.v0, s.v1, s.series = True, float(start), c + cost, []
            return _decision(True, self.limit, _int(self.lim - (c + cost)), end, 0)
        return _decision(False, self.limit, _int(self.lim - c), end, end - now)

    def peek(self, s: State, now: int) -> Decision:
        start, end = self.q.period(now)
        c = self._count(s, start)
        allowed = c + 1 <= self.lim
        return _decision(allowed, self.limit, _int(self.lim - c), end, 0 if allowed else end - now)

    def settle_ms(self, s: State, now: int) -> int:
        return max(0, self.q.period(now)[1] - now)

    def sane(self, s: State, n: float) -> bool:
        return math.isfinite(s.v0) and s.v0 <= n + MAX_SKEW_MS and 0 <= s.v1 < math.inf


def model(st: Strategy) -> Model:
    if isinstance(st, Quota):
        return _SlidingWindow(st.sliding()) if st.reset_cadence == "rolling" else _Quota(st)
    if isinstance(st, Gcra):
        return _Gcra(st)
    if isinstance(st, TokenBucket):
        return _TokenBucket(st)
    if isinstance(st, FixedWindow):
        return _FixedWindow(st)
    if isinstance(st, SlidingWindow):
        return _SlidingWindow(st)
    if isinstance(st, SlidingWindowLog):
        return _SlidingWindowLog(st)
    raise TypeError(f"no peek or forecast for strategy {st!r}")


def sanitized(m: Model, s: State, now: int) -> State:
    """The state as stores read it: state no engine could have written reads as absent."""
    if s.present and not m.sane(s, float(now)):
        return State()
    return s


MAX_SIMULATED_CHECKS = 20_000
"""The most checks a forecast simulates to count spendable_now; past it, Peek's remaining is used."""


def forecast_of(m: Model, s: State, now: int, cost: int) -> Forecast:
    """Forecast from its definition: spendable by checks on a copy; the two instants by binary search
    over Peek, whose remaining never decreases while nothing is spent."""
    spendable = 0
    bound = m.limit // cost + 2
    if bound <= MAX_SIMULATED_CHECKS:
        sim = s.copy()
        while spendable < bound and m.check(sim, now, cost).allowed:
            spendable += 1
    else:
        # Simulating a limit of millions would cost O(limit); Peek counts the units instead (as the
        # server does: engine.MaxSimulatedChecks).
        spendable = m.peek(s, now).remaining // cost
    ceiling = m.peek(State(), now).remaining
    r0 = m.peek(s, now).remaining
    if r0 >= ceiling:
        return Forecast(spendable, now, now)
    return Forecast(
        spendable,
        _first_instant(m, s, now, lambda r: r > r0),
        _first_instant(m, s, now, lambda r: r >= ceiling),
    )


def _first_instant(m: Model, s: State, now: int, pred: Callable[[int], bool]) -> int:
    def holds(t: int) -> bool:
        return pred(m.peek(s, t).remaining)

    hi = m.settle_ms(s, now) + 1
    while not holds(now + hi) and hi < _MAX_HORIZON_MS:
        hi *= 2
    lo = 0
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        if holds(now + mid):
            hi = mid
        else:
            lo = mid
    return now + hi
