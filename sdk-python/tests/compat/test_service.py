"""The service door, Fleet and Monitor as 0.5.1's README and the Getting Started page use them."""

from __future__ import annotations

import pytest

from tests.conftest import Server, StartServer
from throttlekit import (
    Admission,
    AsyncAdmission,
    AsyncServiceBackend,
    Decision,
    FleetBackend,
    Lease,
    MonitorBackend,
    ServiceBackend,
)
from throttlekit.errors import PolicyNotFoundError
from throttlekit.monitor_backend import MonitorPolicy
from throttlekit.service_backend import ServiceUnavailableError, ThrottleKitError


def test_readme_service_door(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        ds = [rl.check("api", "compat-key") for _ in range(6)]
        assert [d.allowed for d in ds] == [True] * 5 + [False]
        assert ds[-1].retry_after_ms > 0
        with rl.admit("checkout", "user-1") as adm:
            assert adm.allowed and adm.held
            with rl.admit("checkout", "user-2") as other:
                assert not other.allowed and not other.held and other.binding_axis
        assert adm.held  # a granted admission keeps saying so once released
        with pytest.raises(PolicyNotFoundError):
            rl.check("typo-policy", "k")


def test_admission_constructible_as_in_0_5(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        a = Admission(rl, Decision(True, 1, 0, 0, 0), "", 0, "rate", False, heartbeat=False)
        assert a.allowed and not a.held and not a.reclaimed
        a.release()  # no slot: a no-op


async def test_async_twin(server: Server) -> None:
    rl = AsyncServiceBackend(server.addr)
    try:
        d = await rl.check("api", "compat-async")
        assert d.allowed
        adm = await rl.admit("checkout", "u")
        async with adm:
            assert adm.allowed and adm.held
        assert adm.held
        a = AsyncAdmission(rl, Decision(False, 1, 0, 0, 10), "", 0, "concurrency", True, heartbeat=False)
        assert not a.allowed and not a.held
        await a.release()
    finally:
        await rl.aclose()


def test_unreachable_is_service_unavailable() -> None:
    from tests.conftest import free_port

    with ServiceBackend(f"127.0.0.1:{free_port()}") as rl:
        with pytest.raises(ServiceUnavailableError) as exc:
            rl.check("api", "k")
        assert isinstance(exc.value, ThrottleKitError)


FLEET = """version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  global-api:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
"""


def test_readme_fleet_and_monitor(start_server: StartServer) -> None:
    srv = start_server(FLEET)
    with FleetBackend(srv.addr) as fleet:
        api = fleet.leased("global-api", domain="acme", batch=4)
        ds = [api.check() for _ in range(12)]
        assert [d.allowed for d in ds] == [True] * 10 + [False] * 2
        refused = fleet.reserve("global-api", domain="acme")
        assert isinstance(refused, Lease) and not refused.granted
        d = refused.denied_decision()
        assert not d.allowed and d.limit == 10 and d.remaining == 0 and d.retry_after_ms == refused.retry_after_ms
    with ServiceBackend(srv.addr) as rl:
        rl.check("api", "watched")
    with MonitorBackend(srv.addr) as mon:
        snap = mon.get_snapshot()
        assert all(isinstance(p, MonitorPolicy) for p in snap.policies)
        assert {p.name for p in snap.policies} >= {"api"}
