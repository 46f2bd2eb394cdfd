"""The pure parts: values validated on construction, headers, the lease spender against the golden
``lease`` suites, and an import that loads neither grpc nor redis."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from throttlekit import (
    Decision,
    FixedWindow,
    Forecast,
    Gcra,
    LeaseGrant,
    LeaseSpender,
    SlidingWindow,
    SlidingWindowLog,
    TokenBucket,
    decision_headers,
    from_spec,
)

from .conftest import VECTORS


def test_import_is_light() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, throttlekit; print('grpc' in sys.modules, 'redis' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Decision(True, 5.0, 0, 0, 0), "limit"),  # type: ignore[arg-type]
        (lambda: Decision(True, 5, "1", 0, 0), "remaining"),  # type: ignore[arg-type]
        (lambda: Decision(1, 5, 0, 0, 0), "allowed"),  # type: ignore[arg-type]
        (lambda: Decision(True, 5, 0, 0, True), "retry_after_ms"),
        (lambda: Forecast(None, 0, 0), "spendable_now"),  # type: ignore[arg-type]
        (lambda: Gcra(0, 1000), "limit"),
        (lambda: Gcra(10, 0), "period_ms"),
        (lambda: Gcra(10, 1000, burst=0), "burst"),
        (lambda: TokenBucket(10, float("inf")), "refill_per_sec"),
        (lambda: FixedWindow(True, 1000), "limit"),
        (lambda: SlidingWindow(10, 1000, buckets=0), "buckets"),
        (lambda: SlidingWindowLog(10_001, 1000), "limit"),
        (lambda: SlidingWindowLog(2**60, 1000), "limit"),
    ],
)
def test_values_validate_on_construction(make: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


def test_values_take_any_ints() -> None:
    # As in 0.5: a value built by hand (a test double, a synthesized answer) is not range-checked.
    assert Decision(True, -1, -5, -3, -7).remaining == -5
    assert Forecast(-1, 0, 0).spendable_now == -1


def test_values_are_frozen() -> None:
    d = Decision(True, 5, 4, 1000, 0)
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
    assert Gcra(10, 1000).reported_limit == 10 and Gcra(10, 1000, 3).reported_limit == 3
    assert from_spec("slidingWindow", {"limit": 10, "windowMs": 1000}) == SlidingWindow(10, 1000, 10)
    with pytest.raises(ValueError, match="unknown strategy"):
        from_spec("leakyBucket", {})


def test_headers() -> None:
    allow = Decision(True, 100, 42, 61_000, 0)
    assert decision_headers(allow, now_ms=1_000) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "42",
        "RateLimit-Reset": "60",
    }
    assert decision_headers(allow, "structured", policy="api", window_s=60, now_ms=1_000) == {
        "RateLimit-Policy": '"api";q=100;w=60',
        "RateLimit": '"api";r=42;t=60',
    }
    deny = Decision(False, 100, 0, 61_999, 1_500)
    assert decision_headers(deny, "legacy", now_ms=1_000) == {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "61",  # the epoch second, rounded down
        "Retry-After": "2",
    }
    both = decision_headers(deny, "both", now_ms=1_000)
    assert both["RateLimit-Reset"] == "61" and both["X-RateLimit-Reset"] == "61" and "RateLimit" not in both
    assert decision_headers(deny, "structured", now_ms=1_000)["RateLimit"] == '"default";r=0;t=61'
    with pytest.raises(ValueError, match="style"):
        decision_headers(allow, "fancy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quoted"):
        decision_headers(allow, "structured", policy='a"b')


def _lease_suites() -> list[dict[str, Any]]:
    suites = json.loads(VECTORS.read_text())["suites"]
    return [s for s in suites if s.get("primitive") == "lease"]


@pytest.mark.parametrize("suite", _lease_suites(), ids=lambda s: s["name"])
def test_lease_spender_follows_the_golden_suites(suite: dict[str, Any]) -> None:
    sp = LeaseSpender(
        limit=suite["limit"], ttl_ms=suite.get("ttlMs", 0), window_coupled=suite.get("windowCoupled", False)
    )
    assert suite["events"], "an empty suite proves nothing"
    for ev in suite["events"]:
        if ev["op"] == "grant":
            sp.apply_lease(LeaseGrant(ev["capacity"], ev["expiresAt"]))
            continue
        got = sp.spend(ev["now"], ev.get("cost", 1))
        want = ev["expect"]
        if want["needsRefresh"]:
            assert got is None, ev
        else:
            w = want["decision"]
            assert got == Decision(w["allowed"], w["limit"], w["remaining"], w["resetAt"], w["retryAfterMs"]), ev


def test_forecast_of_a_huge_limit_reads_peek() -> None:
    """A limit of a billion is forecast from Peek, as the server does (engine.MaxSimulatedChecks), not by a
    billion simulated checks."""
    from throttlekit import _engine

    m = _engine.model(FixedWindow(1_000_000_000, 3_600_000))
    s = _engine.State()
    now = 1_800_000_000_000
    assert m.check(s, now, 7).allowed
    assert _engine.forecast_of(m, s, now, 3).spendable_now == (1_000_000_000 - 7) // 3
