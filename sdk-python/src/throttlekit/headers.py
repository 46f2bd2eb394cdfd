"""HTTP response headers for a decision.

* ``"ietf"`` — the structured fields of draft-ietf-httpapi-ratelimit-headers:
  ``RateLimit-Policy: "<policy>";q=<limit>[;w=<window seconds>]`` and
  ``RateLimit: "<policy>";r=<remaining>;t=<seconds until reset>``.
* ``"legacy"`` — ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch
  seconds, as GitHub and most APIs send it).
* ``"both"`` — both sets.

Every style adds ``Retry-After`` (whole seconds, rounded up) when the decision advises a wait.
"""

from __future__ import annotations

import math
import re
import time
from typing import Literal

from .decision import Decision

Style = Literal["ietf", "legacy", "both"]

_TOKEN = re.compile(r'^[^"\\\x00-\x1f\x7f]*$')


def decision_headers(
    decision: Decision,
    style: Style = "ietf",
    *,
    policy: str = "default",
    window_s: int | None = None,
    now_ms: int | None = None,
) -> dict[str, str]:
    """The response headers for ``decision``. ``policy`` names the policy in the IETF fields (a quoted
    string: no quotes, backslashes or control characters); ``window_s``, when known, is its window;
    ``now_ms`` fixes "now" for the seconds-until-reset (default: the wall clock)."""
    if style not in ("ietf", "legacy", "both"):
        raise ValueError(f"style must be 'ietf', 'legacy' or 'both', not {style!r}")
    if not _TOKEN.match(policy):
        raise ValueError(f"policy {policy!r} cannot be sent in a header's quoted string")
    if window_s is not None and window_s <= 0:
        raise ValueError(f"window_s must be positive, not {window_s}")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    remaining = max(0, decision.remaining)
    headers: dict[str, str] = {}
    if style in ("ietf", "both"):
        reset_s = max(0, math.ceil((decision.reset_at - now) / 1000)) if decision.reset_at else 0
        pol = f'"{policy}";q={decision.limit}'
        if window_s is not None:
            pol += f";w={window_s}"
        headers["RateLimit-Policy"] = pol
        headers["RateLimit"] = f'"{policy}";r={remaining};t={reset_s}'
    if style in ("legacy", "both"):
        headers["X-RateLimit-Limit"] = str(decision.limit)
        headers["X-RateLimit-Remaining"] = str(remaining)
        headers["X-RateLimit-Reset"] = str(math.ceil(decision.reset_at / 1000))
    if decision.retry_after_ms > 0:
        headers["Retry-After"] = str(math.ceil(decision.retry_after_ms / 1000))
    return headers


__all__ = ["Style", "decision_headers"]
