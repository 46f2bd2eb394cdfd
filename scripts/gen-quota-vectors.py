#!/usr/bin/env python3
"""Writes conformance/testdata/quota-vectors.json: quota suites in the golden-vector shape, computed
here — independently of the Go engine — from Python's own calendar (datetime, zoneinfo) and a plain
count per period. Each suite spends a small limit across the boundaries of several periods (the last
millisecond of one, the first of the next), in UTC, at fixed offsets and in zones with DST changes,
a half-hour shift and skipped midnights, plus fixed periods from an anchor.

    PYTHONTZPATH= .tools/pytz/bin/python scripts/gen-quota-vectors.py            # rewrite the file
    PYTHONTZPATH= .tools/pytz/bin/python scripts/gen-quota-vectors.py --check    # fail if it would change

(.tools/pytz holds the pinned tzdata package, made by scripts/check-gen.sh; an empty PYTHONTZPATH keeps
the host's zone files out.)

A midnight a zone skips starts the period at the first instant after the gap: found here by
bisection over instants (the engine asks the zone's transitions instead).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "conformance" / "testdata" / "quota-vectors.json"
UTC = timezone.utc


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000) if dt.microsecond == 0 else round(dt.timestamp() * 1000)


def local_start(d: date, tz: timezone | ZoneInfo) -> int:
    """The first instant whose local date is d or later."""
    guess = ms(datetime(d.year, d.month, d.day, tzinfo=tz))
    lo, hi = guess - 4 * 3_600_000, guess + 4 * 3_600_000

    def reached(t: int) -> bool:
        return datetime.fromtimestamp(t / 1000, tz).date() >= d

    assert not reached(lo) and reached(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi


def period(now: int, o: dict[str, object]) -> tuple[int, int]:
    cadence = o["resetCadence"]
    if cadence == "fixed":
        p, a = int(o["periodMs"]), int(o.get("anchor", 0))  # type: ignore[call-overload]
        start = a + ((now - a) // p) * p
        return start, start + p
    if "timeZone" in o:
        tz: timezone | ZoneInfo = ZoneInfo(str(o["timeZone"]))
    else:
        tz = timezone(timedelta(minutes=int(o.get("offsetMinutes", 0))))  # type: ignore[call-overload]
    today = datetime.fromtimestamp(now / 1000, tz).date()
    if cadence == "calendar-day":
        first, nxt = today, today + timedelta(days=1)
    elif cadence == "calendar-week":
        starts = int(o.get("weekStartsOn", 1))  # type: ignore[call-overload]
        back = (today.isoweekday() % 7 - starts) % 7  # isoweekday: Monday 1 … Sunday 7
        first = today - timedelta(days=back)
        nxt = first + timedelta(days=7)
    else:
        first = today.replace(day=1)
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return local_start(first, tz), local_start(nxt, tz)


def suite(name: str, o: dict[str, object], instants: list[int], cost: int = 1) -> dict[str, object]:
    limit = int(o["limit"])  # type: ignore[call-overload]
    kept_start, count = None, 0
    ops = []
    for now in instants:
        start, end = period(now, o)
        c = count if kept_start == start else 0
        if c + cost <= limit:
            kept_start, count = start, c + cost
            expect = {
                "allowed": True,
                "limit": limit,
                "remaining": limit - count,
                "resetAt": end,
                "retryAfterMs": 0,
            }
        else:
            expect = {
                "allowed": False,
                "limit": limit,
                "remaining": max(0, limit - c),
                "resetAt": end,
                "retryAfterMs": end - now,
            }
        ops.append({"now": now, "cost": cost, "expect": expect})
    return {
        "primitive": "rateLimit",
        "name": name,
        "strategy": {"kind": "quota", "options": o},
        "key": "k",
        "ops": ops,
    }


def rolling_suite(name: str, o: dict[str, object], instants: list[int], cost: int = 1) -> dict[str, object]:
    """A rolling quota is the spec's sliding window (windowMs = periodMs) over a ring of buckets + 1
    slots, in IEEE doubles and the spec's order of operations, as every client computes it."""
    limit, window, n = int(o["limit"]), int(o["periodMs"]), int(o.get("buckets", 10))  # type: ignore[call-overload]
    w = window / n
    ticks: dict[int, int] = {}  # tick -> count, as the ring holds them (older ticks count 0)
    ops = []
    for now in instants:
        c = math.floor(now / w)
        elapsed = max(0.0, now - c * w)
        weight = min(1.0, max(0.0, (w - elapsed) / w))
        full = sum(ticks.get(i, 0) for i in range(c - n + 1, c + 1))
        oldest = ticks.get(c - n, 0)
        estimate = full + oldest * weight
        projected = estimate + cost
        reset_at = math.ceil((c + 1) * w + window)
        if projected <= limit:
            ticks[c] = ticks.get(c, 0) + cost
            ticks = {t: v for t, v in ticks.items() if t >= c - n}  # the ring holds n + 1 ticks
            expect = {
                "allowed": True,
                "limit": limit,
                "remaining": max(0, math.floor(limit - projected)),
                "resetAt": reset_at,
                "retryAfterMs": 0,
            }
        else:
            d = projected - limit
            if oldest > 0 and d <= oldest * weight:
                retry = math.ceil(d * w / oldest)
            else:
                retry = math.ceil((c + 1) * w - now)
            expect = {
                "allowed": False,
                "limit": limit,
                "remaining": max(0, math.floor(limit - estimate)),
                "resetAt": reset_at,
                "retryAfterMs": max(1, retry),
            }
        ops.append({"now": now, "cost": cost, "expect": expect})
    return {
        "primitive": "rateLimit",
        "name": name,
        "strategy": {"kind": "quota", "options": o},
        "key": "k",
        "ops": ops,
    }


def rolling_instants(start: int, window: int, n: int) -> list[int]:
    """A burst at start, then requests every third of a sub-window across two windows and a half."""
    step = window // n // 3
    return [start] * 4 + [start + i * step for i in range(1, 7 * n + n // 2 * 3)]


def around(boundaries: list[int]) -> list[int]:
    """Three requests before each boundary (an hour before, or half a short period; then twice at its
    last ms) and two at it. Every instant is positive: a request's own instant must be."""
    out: list[int] = []
    for prev, b in zip([boundaries[0] - (boundaries[1] - boundaries[0])] + boundaries, boundaries):
        out += [b - min(3_600_000, (b - prev) // 2), b - 1, b - 1, b, b]
    return out


def boundaries(o: dict[str, object], start: int, n: int) -> list[int]:
    out, t = [], start
    for _ in range(n):
        _, end = period(t, o)
        out.append(end)
        t = end
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    cases: list[tuple[str, dict[str, object], int]] = []
    t0 = ms(datetime(2026, 1, 15, 12, tzinfo=UTC))
    for cadence in ("calendar-day", "calendar-week", "calendar-month"):
        cases.append((f"{cadence}/utc", {"limit": 3, "resetCadence": cadence}, t0))
        cases.append(
            (
                f"{cadence}/+330",
                {"limit": 3, "resetCadence": cadence, "offsetMinutes": 330},
                t0,
            )
        )
        cases.append(
            (
                f"{cadence}/-570",
                {"limit": 3, "resetCadence": cadence, "offsetMinutes": -570},
                t0,
            )
        )
    cases.append(
        (
            "calendar-week/sunday",
            {"limit": 3, "resetCadence": "calendar-week", "weekStartsOn": 0},
            t0,
        )
    )
    cases.append(
        (
            "calendar-week/saturday+60",
            {
                "limit": 3,
                "resetCadence": "calendar-week",
                "weekStartsOn": 6,
                "offsetMinutes": 60,
            },
            t0,
        )
    )
    cases.append(
        (
            "calendar-month/leap-february",
            {"limit": 3, "resetCadence": "calendar-month"},
            ms(datetime(2024, 1, 20, tzinfo=UTC)),
        )
    )
    zoned = [
        ("America/New_York", "calendar-day", datetime(2026, 3, 6, 12, tzinfo=UTC)),
        ("America/New_York", "calendar-day", datetime(2026, 10, 30, 12, tzinfo=UTC)),
        ("America/New_York", "calendar-month", datetime(2026, 2, 10, tzinfo=UTC)),
        ("Europe/Berlin", "calendar-week", datetime(2026, 3, 20, tzinfo=UTC)),
        ("Europe/Berlin", "calendar-day", datetime(2026, 10, 23, tzinfo=UTC)),
        ("Australia/Lord_Howe", "calendar-day", datetime(2026, 10, 2, tzinfo=UTC)),
        ("Australia/Lord_Howe", "calendar-day", datetime(2026, 4, 3, tzinfo=UTC)),
        ("America/Santiago", "calendar-day", datetime(2022, 9, 9, 12, tzinfo=UTC)),
        ("America/Santiago", "calendar-week", datetime(2022, 9, 1, tzinfo=UTC)),
        ("Asia/Beirut", "calendar-day", datetime(2023, 3, 24, 12, tzinfo=UTC)),
        ("Asia/Beirut", "calendar-month", datetime(2023, 2, 10, tzinfo=UTC)),
    ]
    for zone, cadence, start in zoned:
        cases.append(
            (
                f"{cadence}/{zone}/{start:%Y-%m-%d}",
                {"limit": 3, "resetCadence": cadence, "timeZone": zone},
                ms(start),
            )
        )
    cases.append(("fixed/1000ms", {"limit": 2, "resetCadence": "fixed", "periodMs": 1000}, 2500))
    cases.append(
        (
            "fixed/30d-anchored",
            {
                "limit": 3,
                "resetCadence": "fixed",
                "periodMs": 30 * 86_400_000,
                "anchor": 1767225600000,
            },
            t0,
        )
    )
    cases.append(
        (
            "fixed/anchor-in-the-future",
            {
                "limit": 2,
                "resetCadence": "fixed",
                "periodMs": 3_600_000,
                "anchor": t0 + 86_400_000,
            },
            t0,
        )
    )
    suites = [suite(name, o, around(boundaries(o, start, 4))) for name, o, start in cases]
    rolling = [
        (
            "rolling/1h-12",
            {
                "limit": 5,
                "resetCadence": "rolling",
                "periodMs": 3_600_000,
                "buckets": 12,
            },
            t0,
            1,
        ),
        (
            "rolling/1s-default-buckets",
            {"limit": 3, "resetCadence": "rolling", "periodMs": 1000},
            2500,
            1,
        ),
        (
            "rolling/cost-2",
            {"limit": 7, "resetCadence": "rolling", "periodMs": 60_000, "buckets": 6},
            t0 + 17,
            2,
        ),
    ]
    for name, o, start, cost in rolling:
        n = int(o.get("buckets", 10))  # type: ignore[call-overload]
        suites.append(rolling_suite(name, o, rolling_instants(start, int(o["periodMs"]), n), cost))  # type: ignore[call-overload]
    body = (
        json.dumps(
            {
                "contractVersion": "1",
                "generatedFrom": "scripts/gen-quota-vectors.py (Python's datetime and zoneinfo)",
                "suites": suites,
            },
            indent=1,
        )
        + "\n"
    )
    if args.check:
        if not OUT.exists() or OUT.read_text() != body:
            print(
                f"gen-quota-vectors: {OUT.relative_to(ROOT)} is stale; run scripts/gen-quota-vectors.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUT.write_text(body)
    print(f"wrote {len(suites)} suites, {sum(len(s['ops']) for s in suites)} ops to {OUT.relative_to(ROOT)}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
