"""Enforcing a policy around a function: ``bind_policy`` turns a backend and a policy name into a
checker, ``rate_limit`` decorates a sync or async function with it. The framework adapters in
:mod:`throttlekit.contrib` decide through the same helpers."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeVar, cast

from .decision import Decision
from .errors import ServiceUnavailableError

F = TypeVar("F", bound=Callable[..., Any])

OnUnavailable = Literal["allow", "deny"]
"""What an adapter does when the service cannot be reached: let the request through (fail open) or
refuse it (fail closed: HTTP 503 from the adapters)."""


class Checker(Protocol):
    """Decides one request: ``checker(key, cost=1)`` returns a Decision, or an awaitable of one."""

    def __call__(self, key: str, *, cost: int = 1) -> Decision | Awaitable[Decision]: ...


class _PolicyBackend(Protocol):
    def check(self, policy: str, key: str, cost: int = 1) -> Decision | Awaitable[Decision]: ...


class RateLimited(Exception):
    """Raised by a ``rate_limit``-decorated function whose request was denied. Not a
    :class:`~throttlekit.ThrottleKitError`: a denial is the limiter working, not failing."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"rate limited; retry after {decision.retry_after_ms} ms")
        self.decision = decision

    @property
    def retry_after_ms(self) -> int:
        return self.decision.retry_after_ms

    @property
    def reset_at(self) -> int:
        return self.decision.reset_at


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine: an ``async def`` function or method, or an object
    whose ``__call__`` is one (which ``inspect.iscoroutinefunction`` alone does not see)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def bind_policy(backend: _PolicyBackend, policy: str) -> Checker:
    """A checker that asks ``backend`` about ``policy``: a coroutine function for an async backend, a
    plain one for a sync backend, so the adapters and ``rate_limit`` can tell them apart."""
    if not policy:
        raise ValueError("policy must not be empty")
    check = backend.check
    if is_async_callable(check):

        async def async_checker(key: str, *, cost: int = 1) -> Decision:
            return await cast(Awaitable[Decision], check(policy, key, cost))

        return async_checker

    def checker(key: str, *, cost: int = 1) -> Decision:
        return cast(Decision, check(policy, key, cost))

    return checker


def check_sync(checker: Checker, key: str, cost: int) -> Decision:
    """Runs a checker from synchronous code. An async checker cannot be: its coroutine is closed (no
    "never awaited" warning) and the call is a :class:`TypeError`."""
    result = checker(key, cost=cost)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise TypeError(
            "an async checker was called from synchronous code: bind a sync backend for a sync function "
            "or framework, or decorate an async function"
        )
    return result


async def check_async(checker: Checker, key: str, cost: int, *, checker_is_async: bool | None = None) -> Decision:
    """Runs a checker from async code without blocking the event loop: an async checker is awaited; a
    sync one (a blocking network call) runs in a worker thread."""
    if checker_is_async is None:
        checker_is_async = is_async_callable(checker)
    if checker_is_async:
        return await cast(Awaitable[Decision], checker(key, cost=cost))
    return await asyncio.to_thread(check_sync, checker, key, cost)


def _check_on_unavailable(on_unavailable: OnUnavailable | None) -> None:
    if on_unavailable not in (None, "allow", "deny"):
        raise ValueError(f"on_unavailable must be 'allow' or 'deny', not {on_unavailable!r}")


# The decision that stands for an unreachable service when a decorated function fails closed.
UNAVAILABLE_DENIAL = Decision(False, 0, 0, 0, 1000)


def rate_limit(
    checker: Checker,
    *,
    key: Callable[..., str],
    cost: int = 1,
    on_unavailable: OnUnavailable | None = None,
) -> Callable[[F], F]:
    """Decorates a sync or async function so each call first spends ``cost`` for
    ``key(*args, **kwargs)``; a denial raises :class:`RateLimited` and the function does not run.

    When the service cannot be reached, :class:`~throttlekit.ServiceUnavailableError` propagates
    unless ``on_unavailable`` says what to do: ``"allow"`` runs the function, ``"deny"`` raises
    :class:`RateLimited` (with a 1 s ``retry_after_ms``)."""
    _check_on_unavailable(on_unavailable)
    checker_is_async = is_async_callable(checker)

    def unavailable(err: ServiceUnavailableError) -> Decision | None:
        if on_unavailable is None:
            raise err
        return None if on_unavailable == "allow" else UNAVAILABLE_DENIAL

    def decorate(fn: F) -> F:
        if is_async_callable(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                d: Decision | None
                try:
                    d = await check_async(checker, key(*args, **kwargs), cost, checker_is_async=checker_is_async)
                except ServiceUnavailableError as err:
                    d = unavailable(err)
                if d is not None and not d.allowed:
                    raise RateLimited(d)
                return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            d: Decision | None
            try:
                d = check_sync(checker, key(*args, **kwargs), cost)
            except ServiceUnavailableError as err:
                d = unavailable(err)
            if d is not None and not d.allowed:
                raise RateLimited(d)
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = ["Checker", "OnUnavailable", "RateLimited", "bind_policy", "rate_limit"]
