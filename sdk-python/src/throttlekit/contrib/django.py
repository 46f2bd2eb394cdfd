"""Django: ``@rate_limit(bind_policy(backend, "api"))`` on a view function."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse

from ..headers import Style
from ..ratelimit import Checker, OnUnavailable, decide
from ._http import TOO_MANY, headers_for

F = TypeVar("F", bound=Callable[..., Any])


def remote_addr(request: HttpRequest) -> str:
    """The connecting peer's address (REMOTE_ADDR; never a forwarded-for header)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def rate_limit(
    checker: Checker,
    *,
    key: Callable[[HttpRequest], str] = remote_addr,
    cost: int = 1,
    on_unavailable: OnUnavailable = "allow",
    style: Style = "ietf",
    policy_name: str = "default",
) -> Callable[[F], F]:
    """Decorates a view: spends ``cost`` first; 429 with headers on a denial."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            d = decide(checker, key(request), cost, on_unavailable)
            if d is None:
                return view(request, *args, **kwargs)
            headers = headers_for(d, style, policy_name)
            if not d.allowed:
                return HttpResponse(TOO_MANY, status=429, headers=headers, content_type="application/json")
            resp = view(request, *args, **kwargs)
            for k, v in headers.items():
                resp[k] = v
            return resp

        return cast(F, wrapped)

    return decorate


__all__ = ["rate_limit", "remote_addr"]
