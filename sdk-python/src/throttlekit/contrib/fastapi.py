"""FastAPI: a dependency per route, or the Starlette middleware for the whole app.

limit = RateLimit(bind_policy(backend, "api"))

@app.get("/items", dependencies=[Depends(limit)])
async def items() -> list[str]: ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, Response

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable, is_async_callable
from ._http import check_options, decide_async, headers_for
from .starlette import ThrottleKitMiddleware


def request_peer(request: Request) -> str:
    """The connecting peer's address (never a forwarded-for header)."""
    return request.client.host if request.client else "unknown"


def RateLimit(
    checker: Checker,
    *,
    key: Callable[[Request], str] = request_peer,
    cost: int = 1,
    style: Style = "ietf",
    on_unavailable: OnUnavailable = "allow",
    stamp_headers: bool = True,
    policy_name: str = "default",
) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency that spends ``cost`` per request: a denial raises ``HTTPException(429)`` with the
    rate-limit headers; an allow stamps them on the response FastAPI builds (not on a ``Response`` the
    endpoint returns itself) unless ``stamp_headers`` is false. An unreachable service lets the request
    through, or with ``on_unavailable="deny"`` raises ``HTTPException(503)``."""
    check_options(on_unavailable, style)
    checker_is_async = is_async_callable(checker)

    async def dependency(request: Request, response: Response) -> None:
        out = await decide_async(checker, key(request), cost, on_unavailable, checker_is_async=checker_is_async)
        if out.refuse:
            raise HTTPException(status_code=503, detail="rate limiter unavailable")
        if out.decision is None:
            return
        headers = headers_for(out.decision, style, policy_name)
        if not out.decision.allowed:
            raise HTTPException(status_code=429, detail="rate limited", headers=headers)
        if stamp_headers:
            response.headers.update(headers)

    return dependency


__all__ = ["RateLimit", "ThrottleKitMiddleware", "request_peer"]
