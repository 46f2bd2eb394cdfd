"""Headers, decisions and the lease spender, as 0.5.1 renders and checks them."""

from __future__ import annotations

import pytest

from throttlekit import Decision, LeaseGrant, LeaseSpender, decision_headers
from throttlekit.contrib import decision_headers as contrib_headers

NOW = 1_700_000_000_000
ALLOW = Decision(True, 100, 42, NOW + 30_001, 0)
DENY = Decision(False, 100, 0, NOW + 60_999, 1_001)


def test_ietf_is_the_default_triple() -> None:
    assert decision_headers(ALLOW, now_ms=NOW) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "42",
        "RateLimit-Reset": "31",  # seconds until reset_at, rounded up
    }
    assert decision_headers(DENY, "ietf", now_ms=NOW) == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "61",
        "Retry-After": "2",  # rounded up, only when a wait is advised
    }


def test_legacy_reset_is_the_floored_epoch_second() -> None:
    assert decision_headers(DENY, "legacy", now_ms=NOW) == {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str((NOW + 60_999) // 1000),
        "Retry-After": "2",
    }


def test_both_and_edges() -> None:
    both = decision_headers(DENY, "both", now_ms=NOW)
    assert set(both) == {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
    }
    assert contrib_headers(DENY, "both", now_ms=NOW) == both
    past = Decision(True, 5, -3, NOW - 10_000, 0)  # any ints: a negative remaining renders as 0
    assert decision_headers(past, now_ms=NOW) == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "0",
    }
    with pytest.raises(ValueError):
        decision_headers(ALLOW, "fancy", now_ms=NOW)  # type: ignore[arg-type]


def test_lease_spender_refuses_a_cost_that_is_not_positive() -> None:
    s = LeaseSpender(limit=10, ttl_ms=1000)
    s.apply_lease(LeaseGrant(capacity=3, expires_at=10_000))
    for bad in (0, -1):
        with pytest.raises(ValueError):
            s.spend(0, bad)
    assert s.credits == 3
    d = s.spend(0, 2)
    assert d is not None and d.allowed and d.remaining == 1 and d.limit == 10
    assert s.spend(0, 2) is None and s.credits == 1
