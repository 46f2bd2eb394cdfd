"""FastAPI: a dependency per route, or the Starlette middleware for the whole app.

limit = RateLimit(bind_policy(backend, "api"))

@app.get("/items", dependencies=[Depends(limit)])
async def items() -> list[str]: ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, Response

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable, decide_async
from ._http import headers_for
from .starlette import ThrottleKitMiddleware


def request_peer(request: Request) -> str:
    """The connecting peer's address (never a forwarded-for header)."""
    return request.client.host if request.client else "unknown"


def RateLimit(
    checker: Checker,
    *,
    key: Callable[[Request], str] = request_peer,
    cost: int = 1,
    on_unavailable: OnUnavailable = "allow",
    style: Style = "ietf",
    policy_name: str = "default",
) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency that spends ``cost`` per request: headers on every answer, 429 on a denial."""

    async def dependency(request: Request, response: Response) -> None:
        d = await decide_async(checker, key(request), cost, on_unavailable)
        if d is None:
            return
        headers = headers_for(d, style, policy_name)
        if not d.allowed:
            raise HTTPException(status_code=429, detail="rate limited", headers=headers)
        for k, v in headers.items():
            response.headers[k] = v

    return dependency


__all__ = ["RateLimit", "ThrottleKitMiddleware", "request_peer"]
