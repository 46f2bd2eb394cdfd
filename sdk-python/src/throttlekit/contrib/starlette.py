"""ASGI middleware for Starlette (and FastAPI): every HTTP request spends from a policy first.

``app.add_middleware(ThrottleKitMiddleware, checker=bind_policy(backend, "api"))``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import ServiceUnavailableError
from ..headers import Style, decision_headers
from ..ratelimit import Checker, OnUnavailable, is_async_callable
from ._http import TOO_MANY, UNAVAILABLE, check_options, decide_async, headers_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def peer(scope: Scope) -> str:
    """The connecting peer's address (the socket's, never a forwarded-for header)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-type", b"application/json")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


class ThrottleKitMiddleware:
    """Spends ``cost`` per HTTP request for ``key(scope)`` (default: the peer's address): a denial is
    answered 429 with the rate-limit headers, an allow gets them on its response. When the service
    cannot be reached, ``on_unavailable`` decides: ``"allow"`` (the default) lets the request through,
    ``"deny"`` answers 503. A sync checker runs in a worker thread, never on the event loop."""

    def __init__(
        self,
        app: ASGIApp,
        checker: Checker,
        *,
        key: Callable[[Scope], str] = peer,
        cost: int = 1,
        style: Style = "ietf",
        on_unavailable: OnUnavailable = "allow",
        policy_name: str = "default",
    ) -> None:
        check_options(on_unavailable, style)
        self.app, self.checker, self.key, self.cost = app, checker, key, cost
        self.on_unavailable, self.style, self.policy_name = on_unavailable, style, policy_name
        self._checker_is_async = is_async_callable(checker)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        out = await decide_async(
            self.checker, self.key(scope), self.cost, self.on_unavailable, checker_is_async=self._checker_is_async
        )
        if out.refuse:
            await _answer(send, 503, UNAVAILABLE, [])
            return
        if out.decision is None:
            await self.app(scope, receive, send)
            return
        extra = headers_for(out.decision, self.style, self.policy_name)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        if not out.decision.allowed:
            await _answer(send, 429, TOO_MANY, raw)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["ServiceUnavailableError", "ThrottleKitMiddleware", "decision_headers", "peer"]
