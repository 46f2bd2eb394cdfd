"""ASGI middleware for Starlette (and FastAPI): every HTTP request spends from a policy first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable, decide_async
from ._http import TOO_MANY, headers_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def peer(scope: Scope) -> str:
    """The connecting peer's address (the socket's, never a forwarded-for header)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ThrottleKitMiddleware:
    """``app.add_middleware(ThrottleKitMiddleware, checker=bind_policy(backend, "api"))``.

    ``key`` maps the ASGI scope to the key (default: the peer's address); ``cost`` is spent per request;
    ``on_unavailable`` is what an unreachable service means ("allow", the default, or "deny")."""

    def __init__(
        self,
        app: ASGIApp,
        checker: Checker,
        *,
        key: Callable[[Scope], str] = peer,
        cost: int = 1,
        on_unavailable: OnUnavailable = "allow",
        style: Style = "ietf",
        policy_name: str = "default",
    ) -> None:
        self.app, self.checker, self.key, self.cost = app, checker, key, cost
        self.on_unavailable, self.style, self.policy_name = on_unavailable, style, policy_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        d = await decide_async(self.checker, self.key(scope), self.cost, self.on_unavailable)
        if d is None:
            await self.app(scope, receive, send)
            return
        extra = headers_for(d, self.style, self.policy_name)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        if not d.allowed:
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [*raw, (b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": TOO_MANY})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["ThrottleKitMiddleware", "peer"]
