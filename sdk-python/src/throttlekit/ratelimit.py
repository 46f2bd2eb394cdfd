"""Enforcing a policy around a function: ``bind_policy`` turns a backend and a policy name into a
checker, ``rate_limit`` decorates a sync or async function with it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeVar, cast

from .decision import Decision
from .errors import ServiceUnavailableError

F = TypeVar("F", bound=Callable[..., Any])

OnUnavailable = Literal["allow", "deny"]
"""What to do when the service cannot be reached: let the call through (fail open, the default), or
refuse it as a denial."""


class Checker(Protocol):
    """Decides one request: ``checker(key, cost=1)`` returns a Decision, or an awaitable of one."""

    def __call__(self, key: str, *, cost: int = 1) -> Decision | Awaitable[Decision]: ...


class _PolicyBackend(Protocol):
    def check(self, policy: str, key: str, cost: int = 1) -> Decision | Awaitable[Decision]: ...


class RateLimited(Exception):
    """Raised by a ``rate_limit``-decorated function whose request was denied."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"rate limited; retry after {decision.retry_after_ms} ms")
        self.decision = decision

    @property
    def retry_after_ms(self) -> int:
        return self.decision.retry_after_ms

    @property
    def reset_at(self) -> int:
        return self.decision.reset_at


def bind_policy(backend: _PolicyBackend, policy: str) -> Checker:
    """A checker that asks ``backend`` (sync or async) about ``policy``."""
    if not policy:
        raise ValueError("policy must not be empty")

    def checker(key: str, *, cost: int = 1) -> Decision | Awaitable[Decision]:
        return backend.check(policy, key, cost)

    return checker


# A decision standing in for a service that could not be reached, when the caller asked to deny.
UNAVAILABLE_DENIAL = Decision(False, 0, 0, 0, 1000)


def decide(checker: Checker, key: str, cost: int, on_unavailable: OnUnavailable) -> Decision | None:
    """Runs a sync checker; None means "let it through" (the service was unreachable, failing open)."""
    try:
        result = checker(key, cost=cost)
    except ServiceUnavailableError:
        return None if on_unavailable == "allow" else UNAVAILABLE_DENIAL
    if inspect.isawaitable(result):
        raise TypeError("an async checker needs an async function or framework")
    return result


async def decide_async(checker: Checker, key: str, cost: int, on_unavailable: OnUnavailable) -> Decision | None:
    """Runs a sync or async checker from async code; None means "let it through"."""
    try:
        result = checker(key, cost=cost)
        if inspect.isawaitable(result):
            result = await result
    except ServiceUnavailableError:
        return None if on_unavailable == "allow" else UNAVAILABLE_DENIAL
    return result


def rate_limit(
    checker: Checker, *, key: Callable[..., str], cost: int = 1, on_unavailable: OnUnavailable = "allow"
) -> Callable[[F], F]:
    """Decorates a function so each call first spends ``cost`` for ``key(*args, **kwargs)``; a denial
    raises :class:`RateLimited` and the function does not run."""
    if on_unavailable not in ("allow", "deny"):
        raise ValueError(f"on_unavailable must be 'allow' or 'deny', not {on_unavailable!r}")

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                d = await decide_async(checker, key(*args, **kwargs), cost, on_unavailable)
                if d is not None and not d.allowed:
                    raise RateLimited(d)
                return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            d = decide(checker, key(*args, **kwargs), cost, on_unavailable)
            if d is not None and not d.allowed:
                raise RateLimited(d)
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = ["Checker", "OnUnavailable", "RateLimited", "bind_policy", "rate_limit"]
