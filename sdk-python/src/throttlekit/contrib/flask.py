"""Flask: ``limiter = ThrottleKit(app, bind_policy(backend, "api"))`` then ``@limiter.limit()``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, make_response, request

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable, decide
from ._http import TOO_MANY, headers_for

F = TypeVar("F", bound=Callable[..., Any])


def remote_addr() -> str:
    """The connecting peer's address (never a forwarded-for header)."""
    return request.remote_addr or "unknown"


class ThrottleKit:
    """Rate limits Flask views with a sync checker."""

    def __init__(
        self,
        app: Flask | None = None,
        checker: Checker | None = None,
        *,
        key: Callable[[], str] = remote_addr,
        on_unavailable: OnUnavailable = "allow",
        style: Style = "ietf",
        policy_name: str = "default",
    ) -> None:
        self.checker, self.key = checker, key
        self.on_unavailable, self.style, self.policy_name = on_unavailable, style, policy_name
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["throttlekit"] = self

    def limit(
        self, cost: int = 1, *, checker: Checker | None = None, key: Callable[[], str] | None = None
    ) -> Callable[[F], F]:
        """Decorates a view: spends ``cost`` first; 429 with headers on a denial."""

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                chk = checker or self.checker
                if chk is None:
                    raise RuntimeError("ThrottleKit has no checker: pass one to ThrottleKit() or limit()")
                d = decide(chk, (key or self.key)(), cost, self.on_unavailable)
                if d is None:
                    return view(*args, **kwargs)
                headers = headers_for(d, self.style, self.policy_name)
                if not d.allowed:
                    return Response(TOO_MANY, status=429, headers=headers, mimetype="application/json")
                resp = make_response(view(*args, **kwargs))
                resp.headers.update(headers)
                return resp

            return cast(F, wrapped)

        return decorate


__all__ = ["ThrottleKit", "remote_addr"]
