"""Every client maps a status the same way: a wrong or missing secret is UnauthenticatedError, a
call past its timeout (DEADLINE_EXCEEDED) and an unreachable server are ServiceUnavailableError — on
the sync and async service, Fleet and Monitor clients alike."""

from __future__ import annotations

import inspect
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from throttlekit import (
    AsyncFleetBackend,
    AsyncMonitorBackend,
    AsyncServiceBackend,
    FleetBackend,
    MonitorBackend,
    ServiceBackend,
    ServiceUnavailableError,
    ThrottleKitError,
    UnauthenticatedError,
)

from .conftest import StartServer, free_port

POLICIES = """version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  fed:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
"""

# Each client, built from (target, secret, timeout), and one call it makes.
Call = Callable[[Any], Any]
CLIENTS: list[tuple[str, Callable[..., Any], Call]] = [
    ("service", ServiceBackend, lambda c: c.check("api", "k")),
    ("async service", AsyncServiceBackend, lambda c: c.check("api", "k")),
    ("fleet", FleetBackend, lambda c: c.reserve("fed")),
    ("async fleet", AsyncFleetBackend, lambda c: c.reserve("fed")),
    ("monitor", MonitorBackend, lambda c: c.get_snapshot()),
    ("async monitor", AsyncMonitorBackend, lambda c: c.get_snapshot()),
]
SECRETS = {"service": "d00r", "fleet": "fl33t", "monitor": "m0n"}


async def _run(make: Callable[..., Any], call: Call, target: str, **kw: Any) -> Any:
    client = make(target, **kw)
    try:
        out = call(client)
        return await out if inspect.isawaitable(out) else out
    finally:
        closed = getattr(client, "aclose", client.close)()
        if isinstance(closed, Awaitable):
            await closed


@pytest.fixture
def hole() -> Iterator[str]:
    """A listener that accepts connections and never answers: only a deadline ends a call to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(("name", "make", "call"), CLIENTS, ids=[c[0] for c in CLIENTS])
async def test_status_mapping(
    name: str, make: Callable[..., Any], call: Call, start_server: StartServer, hole: str
) -> None:
    door = name.removeprefix("async ")
    srv = start_server(
        POLICIES,
        "--secret",
        SECRETS["service"],
        "--fleet-secret",
        SECRETS["fleet"],
        "--monitor-secret",
        SECRETS["monitor"],
    )
    for secret in (None, "wrong"):
        with pytest.raises(UnauthenticatedError, match="UNAUTHENTICATED") as exc:
            await _run(make, call, srv.addr, secret=secret)
        assert isinstance(exc.value, ThrottleKitError)
    assert await _run(make, call, srv.addr, secret=SECRETS[door]) is not None
    with pytest.raises(ServiceUnavailableError, match="DEADLINE_EXCEEDED"):
        await _run(make, call, hole, timeout=0.5)
    with pytest.raises(ServiceUnavailableError, match="UNAVAILABLE"):
        await _run(make, call, f"127.0.0.1:{free_port()}")
