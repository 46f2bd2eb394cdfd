"""What the adapters share: one decision per request with the fail mode applied, the bodies of a
429 and a 503, and the headers of a decision."""

from __future__ import annotations

from dataclasses import dataclass

from ..decision import Decision
from ..errors import ServiceUnavailableError
from ..headers import Style, decision_headers
from ..ratelimit import Checker, OnUnavailable, check_async, check_sync

TOO_MANY = b'{"error":"rate limited"}'
UNAVAILABLE = b'{"error":"rate limiter unavailable"}'


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an adapter does with a request: ``decision`` is the limiter's answer, or None when the
    service could not be reached, and then ``refuse`` says to answer 503 (failing closed) rather than
    let the request through (failing open)."""

    decision: Decision | None
    refuse: bool = False


def _unreachable(on_unavailable: OnUnavailable) -> Outcome:
    return Outcome(None, refuse=on_unavailable == "deny")


def decide(checker: Checker, key: str, cost: int, on_unavailable: OnUnavailable) -> Outcome:
    """The outcome of a request in a sync framework (the checker must be sync)."""
    try:
        return Outcome(check_sync(checker, key, cost))
    except ServiceUnavailableError:
        return _unreachable(on_unavailable)


async def decide_async(
    checker: Checker, key: str, cost: int, on_unavailable: OnUnavailable, *, checker_is_async: bool
) -> Outcome:
    """The outcome of a request in an async framework; a sync checker runs in a worker thread."""
    try:
        return Outcome(await check_async(checker, key, cost, checker_is_async=checker_is_async))
    except ServiceUnavailableError:
        return _unreachable(on_unavailable)


def check_options(on_unavailable: OnUnavailable, style: Style) -> None:
    """Refuses a misspelt option when the adapter is built, not on its first request."""
    if on_unavailable not in ("allow", "deny"):
        raise ValueError(f"on_unavailable must be 'allow' or 'deny', not {on_unavailable!r}")
    decision_headers(Decision(True, 1, 1, 0, 0), style, now_ms=0)


def headers_for(decision: Decision, style: Style, policy: str) -> dict[str, str]:
    return decision_headers(decision, style, policy=policy)
