"""HTTP response headers for a decision, in four styles:

* ``"ietf"`` (the default) — ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``, the
  last in seconds until ``reset_at`` (rounded up, never negative), as most deployed clients read them.
* ``"legacy"`` — ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``, the last
  the epoch second of ``reset_at`` (rounded down), as GitHub and most APIs send it.
* ``"both"`` — both of those sets.
* ``"structured"`` — the structured fields of the current draft-ietf-httpapi-ratelimit-headers:
  ``RateLimit-Policy: "<policy>";q=<limit>[;w=<window seconds>]`` and
  ``RateLimit: "<policy>";r=<remaining>;t=<seconds until reset>``.

Every style adds ``Retry-After`` (whole seconds, rounded up) when the decision advises a wait, and
renders a negative ``remaining`` as 0. These are the styles and rules of the 0.5 client, with
``"structured"`` added; the Go SDK's ratelimitheader package has the same four.
"""

from __future__ import annotations

import math
import re
import time
from typing import Literal

from .decision import Decision

Style = Literal["ietf", "legacy", "both", "structured"]
STYLES: tuple[Style, ...] = ("ietf", "legacy", "both", "structured")

_QUOTABLE = re.compile(r'^[^"\\\x00-\x1f\x7f]*$')


def _seconds_until(at_ms: int, now_ms: int) -> int:
    return max(0, math.ceil((at_ms - now_ms) / 1000))


def decision_headers(
    decision: Decision,
    style: Style = "ietf",
    *,
    now_ms: int | None = None,
    policy: str = "default",
    window_s: int | None = None,
) -> dict[str, str]:
    """The response headers for ``decision`` in ``style``. ``now_ms`` fixes "now" for the seconds until
    reset (default: the wall clock). ``policy`` and ``window_s`` are used by ``"structured"`` only: the
    policy's name (a quoted string: no quotes, backslashes or control characters) and, when known, its
    window in seconds. An unknown style is a :class:`ValueError`."""
    if style not in STYLES:
        raise ValueError(f"unknown header style {style!r}: use one of {', '.join(map(repr, STYLES))}")
    if not _QUOTABLE.match(policy):
        raise ValueError(f"policy {policy!r} cannot be sent in a header's quoted string")
    if window_s is not None and window_s <= 0:
        raise ValueError(f"window_s must be positive, not {window_s}")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    remaining = str(max(0, decision.remaining))
    headers: dict[str, str] = {}
    if style in ("ietf", "both"):
        headers["RateLimit-Limit"] = str(decision.limit)
        headers["RateLimit-Remaining"] = remaining
        headers["RateLimit-Reset"] = str(_seconds_until(decision.reset_at, now))
    if style in ("legacy", "both"):
        headers["X-RateLimit-Limit"] = str(decision.limit)
        headers["X-RateLimit-Remaining"] = remaining
        headers["X-RateLimit-Reset"] = str(decision.reset_at // 1000)
    if style == "structured":
        quota = f'"{policy}";q={decision.limit}'
        if window_s is not None:
            quota += f";w={window_s}"
        headers["RateLimit-Policy"] = quota
        headers["RateLimit"] = f'"{policy}";r={remaining};t={_seconds_until(decision.reset_at, now)}'
    if decision.retry_after_ms > 0:
        headers["Retry-After"] = str(math.ceil(decision.retry_after_ms / 1000))
    return headers


__all__ = ["STYLES", "Style", "decision_headers"]
