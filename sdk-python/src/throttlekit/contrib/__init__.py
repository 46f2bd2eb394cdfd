"""Framework adapters: each answers a denied request with 429 and the rate-limit headers, lets
requests through when the service is unreachable (fail open) unless told to answer 503, and keys on
the connecting peer's address unless given a key function. Forwarded-for headers are never trusted by
default: any client can forge them.

Import the one you use (``throttlekit.contrib.fastapi`` and so on): each needs its framework. The
helpers they share are importable from here too.
"""

from __future__ import annotations

from ..headers import decision_headers
from ..ratelimit import Checker, OnUnavailable, RateLimited, bind_policy, rate_limit

__all__ = ["Checker", "OnUnavailable", "RateLimited", "bind_policy", "decision_headers", "rate_limit"]
