"""bind_policy and rate_limit as 0.5.1 defines them."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings

import pytest

from tests.conftest import Server, free_port
from throttlekit import (
    AsyncServiceBackend,
    Decision,
    RateLimited,
    ServiceBackend,
    ServiceUnavailableError,
    bind_policy,
    rate_limit,
)


def test_bind_policy_keeps_the_backends_nature(server: Server) -> None:
    async def run() -> None:
        rl = AsyncServiceBackend(server.addr)
        try:
            checker = bind_policy(rl, "api")
            assert asyncio.iscoroutinefunction(checker)
            d = await checker("bind-async")
            assert d.allowed
        finally:
            await rl.aclose()

    asyncio.run(run())
    with ServiceBackend(server.addr) as rl:
        checker = bind_policy(rl, "api")
        assert not asyncio.iscoroutinefunction(checker)
        assert checker("bind-sync").allowed  # type: ignore[union-attr]


def test_rate_limit_raises_on_a_denial(server: Server) -> None:
    with ServiceBackend(server.addr) as rl:

        @rate_limit(bind_policy(rl, "window"), key=lambda user: user)
        def greet(user: str) -> str:
            return f"hi {user}"

        assert [greet("deco") for _ in range(3)] == ["hi deco"] * 3
        with pytest.raises(RateLimited) as exc:
            greet("deco")
        assert exc.value.retry_after_ms > 0 and not exc.value.decision.allowed


def test_an_unreachable_service_propagates() -> None:
    with ServiceBackend(f"127.0.0.1:{free_port()}") as dead:

        @rate_limit(bind_policy(dead, "api"), key=str)
        def work(x: str) -> str:
            return x

        with pytest.raises(ServiceUnavailableError):
            work("k")


def test_a_sync_checker_runs_off_the_event_loop() -> None:
    threads: list[int] = []

    def checker(key: str, *, cost: int = 1) -> Decision:
        threads.append(threading.get_ident())
        return Decision(True, 1, 0, 0, 0)

    @rate_limit(checker, key=str)
    async def work(x: str) -> str:
        return x

    async def run() -> int:
        assert await work("k") == "k"
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert threads and threads[0] != loop_thread


def test_an_async_checker_at_a_sync_call_site_leaves_no_warning() -> None:
    async def checker(key: str, *, cost: int = 1) -> Decision:
        return Decision(True, 1, 0, 0, 0)

    @rate_limit(checker, key=str)
    def work(x: str) -> str:
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError):
            work("k")
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
