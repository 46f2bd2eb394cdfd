"""ServiceBackend against a real throttlekit-server: every method, every error, the admission
lifecycle with heartbeats and reclaim."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import grpc
import pytest

import throttlekit
from throttlekit import (
    Decision,
    Forecast,
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceBackend,
    ServiceUnavailableError,
    ThrottleKitError,
)
from throttlekit.errors import PolicyNotFoundError as PolicyNotFoundFromErrors

from .conftest import Server, StartServer, free_port


def test_getting_started_as_written(server: Server) -> None:
    api_key = "gs-key"
    with ServiceBackend(server.addr) as rl:
        d = rl.check("api", api_key)  # consume one unit against the "api" policy
        assert isinstance(d, Decision) and d.allowed
        for _ in range(4):
            rl.check("api", api_key)
        d = rl.check("api", api_key)
        if not d.allowed:
            retry_after_ms = d.retry_after_ms
            assert retry_after_ms > 0
        assert not d.allowed
        try:
            rl.check("typo-policy", api_key)
        except PolicyNotFoundFromErrors:
            pass
        else:
            pytest.fail("an unknown policy did not raise PolicyNotFoundError")
    # The errors are importable from the package too, and all are ThrottleKitErrors.
    assert throttlekit.PolicyNotFoundError is PolicyNotFoundFromErrors
    for cls in (PolicyNotFoundError, OperationNotSupportedError, ServiceUnavailableError, InvalidRequestError):
        assert issubclass(cls, ThrottleKitError)
    assert issubclass(InvalidRequestError, ValueError)


def test_credentials_for_tls_build_a_secure_channel(server: Server) -> None:
    # The server here speaks plaintext: a TLS channel to it cannot complete a call, which is how a
    # client with credentials must behave against a plaintext port (no silent downgrade).
    creds = grpc.ssl_channel_credentials()
    with ServiceBackend(server.addr, credentials=creds, timeout=3) as rl, pytest.raises(ServiceUnavailableError):
        rl.check("api", "k")


def test_every_method(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        ds = rl.check_many("window", ["a", "b", "a", "a", "a"])
        assert [d.allowed for d in ds] == [True, True, True, True, False]
        assert [d.remaining for d in ds] == [2, 2, 1, 0, 0]
        p = rl.peek("window", "a")
        assert not p.allowed and p.remaining == 0
        p = rl.peek("window", "fresh")
        assert p.allowed and p.remaining == 3
        f = rl.forecast("bucket", "k", 1)
        assert isinstance(f, Forecast) and f.spendable_now == 4
        for _ in range(4):
            assert rl.check("bucket", "k").allowed
        f = rl.forecast("bucket", "k")
        assert f.spendable_now == 0 and f.next_replenish_at > 0 and f.full_at >= f.next_replenish_at
        d = rl.debit("completions", "user", 60)
        assert d.allowed and d.remaining == 40
        d = rl.debit("completions", "user", 60)  # the crossing debit is admitted in full
        assert d.allowed and d.remaining == 0
        assert not rl.debit("completions", "user", 1).allowed
        d = rl.check("logins", "u", cost=2)
        assert d.allowed and d.remaining == 1


def test_errors(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        with pytest.raises(PolicyNotFoundError):
            rl.check("nope", "k")
        with pytest.raises(OperationNotSupportedError):
            rl.admit("api", "k")
        with pytest.raises(OperationNotSupportedError):
            rl.check("completions", "k")
        with pytest.raises(InvalidRequestError):
            rl.check("api", "k", -1)
        with pytest.raises(ValueError):  # INVALID_ARGUMENT from the server: an over-long key
            rl.check("api", "k" * 2000)
        with pytest.raises(InvalidRequestError):
            rl.check("api", "")
    with ServiceBackend(f"127.0.0.1:{free_port()}", timeout=2) as dead, pytest.raises(ServiceUnavailableError):
        dead.check("api", "k")


def test_timeout_is_per_call(server: Server) -> None:
    # A listener that accepts connections and never answers: only the deadline ends a call to it.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        target = f"127.0.0.1:{hole.getsockname()[1]}"
        with (
            ServiceBackend(target, timeout=None) as stuck,
            pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"),
        ):
            stuck.check("api", "t", timeout=0.5)
        with ServiceBackend(target, timeout=0.5) as stuck, pytest.raises(ServiceUnavailableError):
            stuck.check("api", "t")  # the backend's default timeout
    with ServiceBackend(server.addr) as rl:
        assert rl.check("api", "t", timeout=30).allowed


def test_admission_lifecycle(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        with rl.admit("checkout") as a:
            assert a.allowed and a.held and a.lease_id and a.lease_expires_at > 0
            b = rl.admit("checkout")
            assert not b.allowed and not b.held and b.binding_axis == "concurrency"
            b.release()  # a no-op without a slot
        assert a.held and not a.active  # granted a slot, since released
        a.release()  # idempotent
        with pytest.raises(RuntimeError), rl.admit("checkout") as a:
            raise RuntimeError("the work failed")
        assert not a.active  # released (as dropped) when the block raised
        with rl.admit("checkout") as again:
            assert again.allowed
        # A unified policy: the rate axis binds after five.
        outcomes = []
        for _ in range(6):
            with rl.admit("unified-api", "u") as u:
                outcomes.append((u.allowed, u.binding_axis))
        assert outcomes[:5] == [(True, "")] * 5 and outcomes[5] == (False, "rate")
        assert not u.policy_denied


def test_heartbeat_holds_a_slot_past_the_ttl(start_server: StartServer) -> None:
    from .conftest import POLICIES

    srv = start_server(POLICIES, "--lease-ttl", "400ms")
    with ServiceBackend(srv.addr, heartbeat_interval=0.1) as rl:
        held = rl.admit("checkout", heartbeat=True)
        unrenewed_check = ServiceBackend(srv.addr)
        time.sleep(1.5)  # well past the ttl: only the heartbeat keeps the slot
        assert held.active and not held.reclaimed
        assert not unrenewed_check.admit("checkout").allowed
        held.release()
        assert unrenewed_check.admit("checkout").allowed
        unrenewed_check.close()


def test_unrenewed_slot_is_reclaimed(start_server: StartServer) -> None:
    from .conftest import POLICIES

    srv = start_server(POLICIES, "--lease-ttl", "300ms")
    with ServiceBackend(srv.addr) as rl:
        a = rl.admit("checkout")
        assert a.held
        deadline = time.monotonic() + 30
        while not rl.admit("checkout").allowed:
            assert time.monotonic() < deadline, "the slot was never reclaimed"
            time.sleep(0.1)
        beat = rl.heartbeat([a.lease_id])
        assert beat.live_ids == () and beat.reclaimed_ids == (a.lease_id,) and beat.next_deadline >= 0


def test_heartbeat_reports_reclaimed(start_server: StartServer) -> None:
    from .conftest import POLICIES

    srv = start_server(POLICIES, "--lease-ttl", "200ms")
    with ServiceBackend(srv.addr, heartbeat_interval=2.0) as rl:
        a = rl.admit("checkout", heartbeat=True)  # beats every 2 s: too slow for a 200 ms ttl
        deadline = time.monotonic() + 30
        while not a.reclaimed:
            assert time.monotonic() < deadline, "the heartbeat never reported the reclaim"
            time.sleep(0.1)
        assert a.held and not a.active
        a.release()  # a reclaimed slot is not released again


def test_killed_client_slot_is_reclaimed(start_server: StartServer) -> None:
    from .conftest import POLICIES

    srv = start_server(POLICIES, "--lease-ttl", "300ms")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from throttlekit import ServiceBackend\n"
            f"rl = ServiceBackend({srv.addr!r}, heartbeat_interval=0.05)\n"
            "a = rl.admit('checkout', heartbeat=True)\n"
            "print('held' if a.held else 'refused', flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        with ServiceBackend(srv.addr) as rl:
            time.sleep(1.0)
            assert not rl.admit("checkout").allowed, "the live holder's slot was lost"
            holder.kill()
            holder.wait(10)
            deadline = time.monotonic() + 30
            while not rl.admit("checkout").allowed:
                assert time.monotonic() < deadline, "the killed client's slot was never reclaimed"
                time.sleep(0.1)
    finally:
        holder.kill()


FAIR = """version: 1
limiters:
  llm-tokens:
    fairEscrow: { limit: 100, windowMs: 3650d, weights: { search: 3, support: 1 } }
"""


def test_a_fair_share(start_server: StartServer) -> None:
    """A fairEscrow through ServiceBackend: both tenants active, search (3) and support (1) split 100 as
    75 and 25; check_many decides key by key; peek and forecast are not served."""
    srv = start_server(FAIR)
    with ServiceBackend(srv.addr) as rl:
        got = {"search": 0, "support": 0}
        for _ in range(20):
            for team in got:
                if rl.check("llm-tokens", team, cost=5).allowed:
                    got[team] += 5
        assert got == {"search": 75, "support": 25}
        assert [d.allowed for d in rl.check_many("llm-tokens", ["search", "support", "other"])] == [False, False, False]
        with pytest.raises(OperationNotSupportedError):
            rl.peek("llm-tokens", "search")
        with pytest.raises(OperationNotSupportedError):
            rl.forecast("llm-tokens", "search", 1)
