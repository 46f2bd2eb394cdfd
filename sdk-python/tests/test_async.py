"""AsyncServiceBackend against a real server: the async twins of every method, error and the
admission lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from throttlekit import (
    AsyncServiceBackend,
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceUnavailableError,
)

from .conftest import POLICIES, Server, StartServer, free_port


async def test_every_method(server: Server) -> None:
    async with AsyncServiceBackend(server.addr) as rl:
        ds = await asyncio.gather(*(rl.check("api", "a") for _ in range(7)))
        assert sum(d.allowed for d in ds) == 5
        many = await rl.check_many("window", ["x", "y", "x"])
        assert [d.remaining for d in many] == [2, 2, 1]
        assert (await rl.peek("window", "x")).remaining == 1
        f = await rl.forecast("window", "x")
        assert f.spendable_now == 1 and f.full_at == f.next_replenish_at > 0
        d = await rl.debit("completions", "u", 99)
        assert d.allowed and d.remaining == 1


async def test_errors(server: Server) -> None:
    async with AsyncServiceBackend(server.addr) as rl:
        with pytest.raises(PolicyNotFoundError):
            await rl.check("nope", "k")
        with pytest.raises(OperationNotSupportedError):
            await rl.debit("api", "k")
        with pytest.raises(InvalidRequestError):
            await rl.check("api", "k", -2)
    async with AsyncServiceBackend(f"127.0.0.1:{free_port()}", timeout=2) as dead:
        with pytest.raises(ServiceUnavailableError):
            await dead.check("api", "k")


async def test_admission_lifecycle(start_server: StartServer) -> None:
    srv = start_server(POLICIES, "--lease-ttl", "400ms")
    async with AsyncServiceBackend(srv.addr, heartbeat_interval=0.1) as rl:
        async with await rl.admit("checkout", heartbeat=True) as a:
            assert a.allowed and a.held
            await asyncio.sleep(1.5)  # past the ttl: the heartbeat task keeps it
            assert a.active and not a.reclaimed
            assert not (await rl.admit("checkout")).allowed
        assert a.held and not a.active  # granted a slot, since released
        with pytest.raises(ValueError):
            async with await rl.admit("checkout") as b:
                raise ValueError("the work failed")
        assert not b.active
        assert (await rl.admit("checkout")).allowed
