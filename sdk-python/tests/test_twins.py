"""The sync and async service backends share everything that is not I/O (one base class): the same
options are refused, the same requests built, and a lease is tracked, renewed and reclaimed by the
same code — so the twins cannot drift apart."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from throttlekit import AsyncServiceBackend, HeartbeatResult, ServiceBackend
from throttlekit._service import BaseServiceBackend

from .conftest import StartServer, free_port


def _admit_reply(lease_id: str) -> Any:
    decision = SimpleNamespace(allowed=True, limit=1, remaining=0, reset_at=0, retry_after_ms=0)
    return SimpleNamespace(
        decision=decision, lease_id=lease_id, lease_expires_at=5, binding_axis="", policy_denied=False
    )


@pytest.mark.parametrize("cls", [ServiceBackend, AsyncServiceBackend])
def test_twins_share_the_base(cls: type[Any]) -> None:
    assert BaseServiceBackend in cls.__mro__
    bads: list[dict[str, Any]] = [{"heartbeat_interval": 0}, {"timeout": -1}]
    for bad in bads:
        with pytest.raises(ValueError):
            cls("127.0.0.1:1", **bad)


async def test_no_heartbeat_starts_after_close() -> None:
    for rl in (ServiceBackend(f"127.0.0.1:{free_port()}"), AsyncServiceBackend(f"127.0.0.1:{free_port()}")):
        a, start = rl._admitted(_admit_reply("l1"), True)
        assert start and a.active and rl._lease_ids() == ["l1"]
        _, again = rl._admitted(_admit_reply("l2"), True)
        assert not again  # one beat loop for every lease
        rl._renewed(HeartbeatResult(("l2",), ("l1",), 0))
        assert a.reclaimed and not a.active and rl._lease_ids() == ["l2"]
        if isinstance(rl, AsyncServiceBackend):
            await rl.aclose()
        else:
            rl.close()
        late, start = rl._admitted(_admit_reply("l3"), True)
        assert not start and "l3" not in rl._lease_ids()  # closed: the server's ttl reclaims it


async def test_async_heartbeat_mirrors_the_sync(start_server: StartServer) -> None:
    from .conftest import POLICIES

    srv = start_server(POLICIES, "--lease-ttl", "300ms")
    async with AsyncServiceBackend(srv.addr) as rl:
        a = await rl.admit("checkout")
        assert a.held and a.active
        deadline = asyncio.get_running_loop().time() + 30
        while not (c := await rl.admit("checkout")).allowed:
            assert asyncio.get_running_loop().time() < deadline, "the slot was never reclaimed"
            await asyncio.sleep(0.1)
        await c.release()
        beat = await rl.heartbeat([a.lease_id])
        assert beat == HeartbeatResult((), (a.lease_id,), beat.next_deadline)
    with ServiceBackend(srv.addr) as sync_rl:
        b = sync_rl.admit("checkout")
        assert b.allowed
        assert sync_rl.heartbeat([b.lease_id]).live_ids == (b.lease_id,)
        b.release()
