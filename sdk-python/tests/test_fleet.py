"""FleetBackend, AsyncFleetBackend and the leased limiters against a real server's Fleet door, and the
decision door's secret from Python."""

from __future__ import annotations

import pytest

from throttlekit import (
    AsyncFleetBackend,
    FleetBackend,
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceBackend,
    ThrottleKitError,
)

from .conftest import StartServer

FLEET_POLICIES = """version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  fed:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
"""


def test_reserve_and_leased(start_server: StartServer) -> None:
    srv = start_server(FLEET_POLICIES)
    with FleetBackend(srv.addr) as fleet:
        lease = fleet.reserve("fed", domain="acme", wants=4)
        assert (lease.capacity, lease.safe_capacity, lease.limit) == (4, 4, 10) and lease.expiry_ms > 0
        assert fleet.reserve("fed", domain="acme", wants=100).capacity == 6
        refused = fleet.reserve("fed", domain="acme")
        assert not refused.granted and refused.retry_after_ms > 0
        with pytest.raises(OperationNotSupportedError):
            fleet.reserve("api")
        with pytest.raises(OperationNotSupportedError):
            fleet.reserve("fed", axis="concurrency")
        with pytest.raises(PolicyNotFoundError):
            fleet.reserve("nope")
        with pytest.raises(InvalidRequestError):
            fleet.reserve("fed", wants=-1)
        limiter = fleet.leased("fed", domain="t1", batch=3)
        ds = [limiter.check() for _ in range(13)]
        assert [d.allowed for d in ds] == [True] * 10 + [False] * 3
        assert ds[-1].retry_after_ms > 0 and ds[-1].limit == 10 and limiter.credits == 0


async def test_async_leased(start_server: StartServer) -> None:
    srv = start_server(FLEET_POLICIES)
    async with AsyncFleetBackend(srv.addr) as fleet:
        limiter = fleet.leased("fed", domain="a1", batch=4)
        ds = [await limiter.check() for _ in range(11)]
        assert sum(d.allowed for d in ds) == 10 and not ds[-1].allowed


def test_secrets(start_server: StartServer) -> None:
    srv = start_server(FLEET_POLICIES, "--fleet-secret", "fl33t", "--secret", "d00r")
    with FleetBackend(srv.addr) as fleet, pytest.raises(ThrottleKitError, match="UNAUTHENTICATED"):
        fleet.reserve("fed")
    with FleetBackend(srv.addr, secret="fl33t") as fleet:
        assert fleet.reserve("fed").capacity == 1
    with ServiceBackend(srv.addr) as rl, pytest.raises(ThrottleKitError, match="UNAUTHENTICATED"):
        rl.check("api", "k")
    with ServiceBackend(srv.addr, secret="d00r", metadata=[("x-request-id", "1")]) as rl:
        assert rl.check("api", "k").allowed
