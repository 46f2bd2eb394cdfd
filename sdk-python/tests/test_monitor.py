"""MonitorBackend and AsyncMonitorBackend against a real server: the snapshot after real traffic, the
stream of denials, and the door's secret."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from throttlekit import (
    AsyncMonitorBackend,
    Denial,
    MonitorBackend,
    OperationNotSupportedError,
    ServiceBackend,
    ThrottleKitError,
)

from .conftest import POLICIES, Server, StartServer


def _api_counts(mon: MonitorBackend) -> tuple[int, int]:
    for p in mon.get_snapshot().policies:
        if p.name == "api":
            return p.allowed, p.denied
    raise AssertionError("no api policy in the snapshot")


def test_snapshot_after_traffic(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:
        for _ in range(7):
            rl.check("api", "alice")
        rl.debit("completions", "tenant", 40)
    with MonitorBackend(server.addr) as mon:
        deadline = time.monotonic() + 30
        while _api_counts(mon) != (5, 2) and time.monotonic() < deadline:
            time.sleep(0.02)  # the server aggregates off the decision path
        snap = mon.get_snapshot()
    assert snap.mode == "process" and snap.window_ms == 60_000 and snap.node_id
    api = next(p for p in snap.policies if p.name == "api")
    assert (api.kind, api.strategy, api.allowed, api.denied, api.limit) == ("limiter", "gcra", 5, 2, 5)
    full = snap.parsed()
    assert [d["key"] for d in full["recentDenials"]] == ["alice", "alice"]
    completions = next(p for p in full["policies"] if p["name"] == "completions")
    assert completions["burn"] == [{"key": "tenant", "tokens": 40, "remaining": 60, "exhaustsInMs": 90_000}]
    assert {p.name for p in snap.policies} == {
        "api",
        "bucket",
        "window",
        "sliding",
        "logins",
        "completions",
        "checkout",
        "unified-api",
    }


def test_watch_streams_denials_of_one_policy(server: Server) -> None:
    got: list[Denial] = []
    with MonitorBackend(server.addr) as mon, ServiceBackend(server.addr) as rl:
        stream = mon.watch("window")
        ready = threading.Event()

        def read() -> None:
            ready.set()
            for d in stream:
                got.append(d)
                return

        reader = threading.Thread(target=read)
        reader.start()
        ready.wait()
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            rl.check("api", "other")  # another policy: filtered out
            rl.check("window", "w")
            time.sleep(0.02)
        reader.join(timeout=30)
        stream.close()
    assert got and got[0].policy == "window" and got[0].key == "w" and got[0].axis == "rate"
    assert got[0].limit == 3 and got[0].retry_after_ms > 0


def test_secret_and_off(start_server: StartServer) -> None:
    guarded = start_server(POLICIES, "--monitor-secret", "m0n")
    with MonitorBackend(guarded.addr) as mon, pytest.raises(ThrottleKitError, match="UNAUTHENTICATED"):
        mon.get_snapshot()
    with MonitorBackend(guarded.addr, secret="m0n") as mon:
        assert mon.get_snapshot().mode == "process"
    off = start_server(POLICIES, "--monitor", "off")
    with MonitorBackend(off.addr) as mon, pytest.raises(OperationNotSupportedError):
        mon.get_snapshot()


async def test_async_snapshot_and_watch(server: Server) -> None:
    async with AsyncMonitorBackend(server.addr) as mon:
        stream = mon.watch()

        async def first() -> Denial:
            async for d in stream:
                return d
            raise AssertionError("the stream ended")

        task = asyncio.create_task(first())
        with ServiceBackend(server.addr) as rl:
            deadline = time.monotonic() + 30
            while not task.done() and time.monotonic() < deadline:
                rl.check("logins", "eve")
                await asyncio.sleep(0.02)
        d = await asyncio.wait_for(task, 30)
        assert d.policy == "logins" and d.key == "eve"
        snap = await mon.get_snapshot()
        assert any(p.name == "logins" and p.denied >= 1 for p in snap.policies)
