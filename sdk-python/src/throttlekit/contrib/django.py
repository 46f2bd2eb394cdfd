"""Django: ``@rate_limit(bind_policy(backend, "api"))`` on a view function, and
``throttlekit.contrib.django.ThrottleKitMiddleware`` in ``MIDDLEWARE`` to answer a denial with 429.

A denied request raises :class:`Ratelimited`, a ``PermissionDenied`` (Django answers 403 for it when
the middleware is not installed); with ``block=False`` the view runs and decides for itself from
``request.throttlekit_decision``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from ..decision import Decision
from ..headers import Style
from ..ratelimit import Checker, OnUnavailable
from ._http import TOO_MANY, UNAVAILABLE, check_options, decide, headers_for

F = TypeVar("F", bound=Callable[..., Any])


class Ratelimited(PermissionDenied):  # type: ignore[misc]  # django is untyped here
    """A denied request, carrying its :class:`~throttlekit.Decision`."""

    def __init__(self, decision: Decision) -> None:
        super().__init__("rate limited")
        self.decision = decision


def remote_addr(request: HttpRequest) -> str:
    """The connecting peer's address (REMOTE_ADDR; never a forwarded-for header)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def rate_limit(
    checker: Checker,
    *,
    key: Callable[[HttpRequest], str] = remote_addr,
    cost: int = 1,
    block: bool = True,
    style: Style = "ietf",
    on_unavailable: OnUnavailable = "allow",
    stamp_headers: bool = True,
    policy_name: str = "default",
) -> Callable[[F], F]:
    """Decorates a view: it spends ``cost`` first and sets ``request.throttlekit_decision``. A denial
    raises :class:`Ratelimited` (``block=False``: the view runs anyway). The rate-limit headers are
    stamped on the view's response unless ``stamp_headers`` is false. When the service cannot be
    reached, ``on_unavailable`` decides: ``"allow"`` (the default) runs the view with the decision
    None, ``"deny"`` answers 503."""
    check_options(on_unavailable, style)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            out = decide(checker, key(request), cost, on_unavailable)
            if out.refuse:
                return HttpResponse(UNAVAILABLE, status=503, content_type="application/json")
            request.throttlekit_decision = out.decision
            if out.decision is None:
                return view(request, *args, **kwargs)
            if block and not out.decision.allowed:
                raise Ratelimited(out.decision)
            resp = view(request, *args, **kwargs)
            if stamp_headers:
                for k, v in headers_for(out.decision, style, policy_name).items():
                    resp[k] = v
            return resp

        return cast(F, wrapped)

    return decorate


class ThrottleKitMiddleware:
    """Answers :class:`Ratelimited` with 429 and the decision's headers, in the style of
    ``settings.THROTTLEKIT_HEADER_STYLE`` (default ``"ietf"``; ``"structured"`` names the policy
    ``settings.THROTTLEKIT_POLICY_NAME``, default ``"default"``)."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, Ratelimited):
            return None
        style: Style = getattr(settings, "THROTTLEKIT_HEADER_STYLE", "ietf")
        headers = headers_for(exception.decision, style, getattr(settings, "THROTTLEKIT_POLICY_NAME", "default"))
        return HttpResponse(TOO_MANY, status=429, headers=headers, content_type="application/json")


__all__ = ["Ratelimited", "ThrottleKitMiddleware", "rate_limit", "remote_addr"]
