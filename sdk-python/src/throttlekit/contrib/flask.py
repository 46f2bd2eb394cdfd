"""Flask: ``limiter = ThrottleKit(app, checker=bind_policy(backend, "api"))`` then ``@limiter.limit()``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, make_response, request

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable
from ._http import TOO_MANY, UNAVAILABLE, check_options, decide, headers_for

F = TypeVar("F", bound=Callable[..., Any])


def remote_addr() -> str:
    """The connecting peer's address (never a forwarded-for header)."""
    return request.remote_addr or "unknown"


class ThrottleKit:
    """Rate limits Flask views with a sync checker: ``default_cost`` per request unless a route says
    otherwise, the rate-limit headers on every answer unless ``headers_enabled`` is false, 429 on a
    denial. When the service cannot be reached, ``on_unavailable`` decides: ``"allow"`` (the default)
    runs the view, ``"deny"`` answers 503."""

    def __init__(
        self,
        app: Flask | None = None,
        checker: Checker | None = None,
        *,
        key: Callable[[], str] = remote_addr,
        default_cost: int = 1,
        style: Style = "ietf",
        headers_enabled: bool = True,
        on_unavailable: OnUnavailable = "allow",
        policy_name: str = "default",
    ) -> None:
        check_options(on_unavailable, style)
        self.checker, self.key, self.default_cost = checker, key, default_cost
        self.style, self.headers_enabled = style, headers_enabled
        self.on_unavailable, self.policy_name = on_unavailable, policy_name
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["throttlekit"] = self

    def limit(
        self, cost: int | None = None, *, checker: Checker | None = None, key: Callable[[], str] | None = None
    ) -> Callable[[F], F]:
        """Decorates a view: it spends ``cost`` (None: the extension's ``default_cost``) first."""

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                chk = checker if checker is not None else self.checker
                if chk is None:
                    raise RuntimeError("ThrottleKit has no checker: pass one to ThrottleKit() or limit()")
                spend = self.default_cost if cost is None else cost
                out = decide(chk, (key or self.key)(), spend, self.on_unavailable)
                if out.refuse:
                    return Response(UNAVAILABLE, status=503, mimetype="application/json")
                if out.decision is None:
                    return view(*args, **kwargs)
                if out.decision.allowed:
                    resp = make_response(view(*args, **kwargs))
                else:
                    resp = Response(TOO_MANY, status=429, mimetype="application/json")
                if self.headers_enabled:
                    resp.headers.update(headers_for(out.decision, self.style, self.policy_name))
                return resp

            return cast(F, wrapped)

        return decorate


__all__ = ["ThrottleKit", "remote_addr"]
